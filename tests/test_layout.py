"""The tree keeps its promises: the README's layout map, tests mirrored per package, one-way imports, small
documented modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("endpoint", "proxy", "models", "simulators")
MAX_LINES = 300
# Who may import whom (top-level project packages only); STYLE.md §4.
ALLOWED_IMPORTS = {
    "models": set(),
    "proxy": set(),
    "endpoint": {"models", "proxy"},
    "simulators": set(),
    # The local development stack ships with the simulators, not the runtime, but it sets up the endpoint it
    # starts (settings, demo tenancy, admin): of simulators/ it alone may import the project.
    "simulators.devstack": {"endpoint", "models", "proxy"},
    "bootstrap": {"endpoint", "models", "proxy"},
}
PROJECT = {name.split(".")[0] for name in ALLOWED_IMPORTS}
# Inside endpoint/: the domain both protocols act on, and the parsing they share, know no protocol or handler.
NEUTRAL = ("endpoint.tenancy", "endpoint.parsing")
NEUTRAL_MAY_IMPORT = ("endpoint.errors", *NEUTRAL)  # strict_json is in parsing/
# The endpoint/ root: the entry point, the composition root and the error family; the rest is in packages.
ENDPOINT_ROOT = {"__init__.py", "__main__.py", "runtime.py", "errors.py"}


def source_modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "mitm" in path.relative_to(ROOT).parts or path.name in ("__init__.py", "__main__.py"):
                continue
            found.append(path)
    return found


def imported_modules(path: Path) -> set[str]:
    """Every absolute import of ``path`` as a dotted name; ``from a.b import c`` gives a.b and a.b.c."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported_top_levels(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def source_packages() -> list[Path]:
    return sorted({path.parent for path in source_modules()})


@pytest.mark.parametrize("package", source_packages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_package_has_mirrored_tests(package: Path) -> None:
    """Tests mirror the tree per package: endpoint/aps/ is tested in tests/endpoint/aps/, by files named
    after what they test (a module, or a concern that spans several)."""
    mirrored = ROOT / "tests" / package.relative_to(ROOT)
    assert list(mirrored.glob("test_*.py")), f"no tests in {mirrored.relative_to(ROOT)}/"


def test_every_test_directory_mirrors_a_package() -> None:
    """The reverse direction: no tests left behind by a package that moved or went away."""
    orphans = []
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        relative = test.relative_to(ROOT / "tests")
        if relative.parts[0] not in PACKAGES or "mitm" in relative.parts:
            continue
        if not (ROOT / relative.parent).is_dir():
            orphans.append(str(relative))
    assert orphans == []


def test_shared_test_helpers_live_in_tests_support() -> None:
    """tests/ itself holds only fixtures and the tree-wide tests; helpers used across packages (builders,
    databases, live servers, processes) are in tests/support/, named for what they do."""
    loose = [p.name for p in (ROOT / "tests").glob("*.py") if p.name not in ("__init__.py", "conftest.py")]
    assert [name for name in loose if not name.startswith("test_")] == []


def test_test_packages_hold_no_code_in_their_init() -> None:
    """A helper in a package's __init__.py has no name that says what it does: it goes in a module."""
    coded = []
    for init in sorted((ROOT / "tests").rglob("__init__.py")):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        if [
            node for node in body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]:
            coded.append(str(init.relative_to(ROOT)))
    assert coded == []


def test_a_test_package_helper_serves_only_its_own_package() -> None:
    """A helper module next to the tests of one package (tests/endpoint/outbox/produce.py) is imported only
    from that directory; one that another package needs belongs in tests/support/."""
    helpers = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path.parent
        for path in (ROOT / "tests").rglob("*.py")
        if not path.name.startswith("test_")
        and path.name not in ("__init__.py", "conftest.py")
        and "support" not in path.relative_to(ROOT).parts
        and "mitm" not in path.relative_to(ROOT).parts
    }
    strays = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if "mitm" not in path.relative_to(ROOT).parts
        for name in imported_modules(path)
        if name in helpers and helpers[name] != path.parent
    ]
    assert strays == []


def test_the_endpoint_root_holds_the_entry_point_the_composition_root_and_the_errors() -> None:
    """Every other concern of the service has a package named for it (config/, commands/, work/, ...)."""
    assert {p.name for p in (ROOT / "endpoint").glob("*.py")} <= ENDPOINT_ROOT


def test_the_readme_layout_table_names_every_endpoint_package() -> None:
    """README.md's Layout table is the map: each package of endpoint/ has a row, and each row names a
    directory that exists."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    named = {path.strip("/") for row in rows for path in row.split("`")[1::2]}
    packages = {str(init.parent.relative_to(ROOT)) for init in (ROOT / "endpoint").glob("*/__init__.py")}
    assert packages - named == set(), "packages without a row in the README's layout table"
    assert [name for name in sorted(named) if not (ROOT / name).exists()] == []


@pytest.mark.parametrize(
    "path", [*source_modules(), ROOT / "bootstrap.py"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_imports_flow_one_way(path: Path) -> None:
    """Each module may import its own top-level package and what ALLOWED_IMPORTS grants the most specific
    entry it lives under (simulators/devstack/ has an entry of its own)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    owner = next(name for n in range(len(parts), 0, -1) if (name := ".".join(parts[:n])) in ALLOWED_IMPORTS)
    used = imported_top_levels(path) & PROJECT
    forbidden = used - ALLOWED_IMPORTS[owner] - {parts[0]}
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_only_the_dev_stack_verb_leaves_the_runtime() -> None:
    """`connector stack` is the runtime's one link to simulators/: its verb table names the dev stack's
    command module (loaded by name), and no other verb lives outside endpoint/."""
    from endpoint.commands.cli import VERBS

    outside = {name: verb.module for name, verb in VERBS.items() if not verb.module.startswith("endpoint.")}
    assert outside == {"stack": "simulators.devstack.stack_cmd"}


def test_nothing_else_in_simulators_imports_the_dev_stack() -> None:
    """The simulators stay stand-ins that run without the endpoint: none of them imports devstack/."""
    users = [
        str(relative)
        for path in source_modules()
        if (relative := path.relative_to(ROOT)).parts[0] == "simulators"
        and relative.parts[1] != "devstack"
        and any(name.startswith("simulators.devstack") for name in imported_modules(path))
    ]
    assert users == []


@pytest.mark.parametrize(
    "path",
    [p for p in source_modules() if str(p.relative_to(ROOT).parent).replace("/", ".").startswith(NEUTRAL)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_tenancy_and_parsing_import_no_protocol_or_handler(path: Path) -> None:
    """They may use models/ and proxy/ (the top-level rule above) and, of endpoint/, only each other and the
    error family: never web/, callbacks/, aps/, auth/ or anything else that serves a request."""
    used = {name for name in imported_modules(path) if name.split(".")[0] == "endpoint"}
    # "from endpoint import x" names endpoint itself, and endpoint.x, which is what counts.
    stray = {name for name in used if name != "endpoint" and not name.startswith(NEUTRAL_MAY_IMPORT)}
    assert not stray, f"{path.relative_to(ROOT)} imports {sorted(stray)}"


def test_of_endpoint_only_the_entry_point_imports_the_command_line() -> None:
    """commands/ sits on top: the verbs it runs are loaded by name from its table, and no package of the
    service imports it (endpoint/__main__.py and bootstrap.py do)."""
    users = [
        str(path.relative_to(ROOT))
        for path in source_modules()
        if path.relative_to(ROOT).parts[:2] != ("endpoint", "commands")
        and path.relative_to(ROOT).parts[0] == "endpoint"
        and any(name.startswith("endpoint.commands") for name in imported_modules(path))
    ]
    assert users == []


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "endpoint" / "observability").glob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_observability_knows_only_the_configuration(path: Path) -> None:
    """Logging and metrics serve every layer, so they import none of them: of endpoint/, only config/."""
    used = {
        name for name in imported_modules(path) if name.split(".")[0] == "endpoint" and name != "endpoint"
    }
    stray = {name for name in used if not name.startswith(("endpoint.config", "endpoint.observability"))}
    assert not stray, f"{path.relative_to(ROOT)} imports {sorted(stray)}"


@pytest.mark.parametrize(
    "path", [*source_modules(), ROOT / "bootstrap.py"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_runtime_code_never_imports_mitmproxy(path: Path) -> None:
    assert "mitmproxy" not in imported_top_levels(path)


@pytest.mark.parametrize(
    "path",
    [*source_modules(), *sorted((ROOT / "proxy" / "mitm").glob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_modules_are_small_and_say_what_they_hold(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"over {MAX_LINES} lines"
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring, "missing module docstring"


def test_no_module_level_settings_or_environment_reads() -> None:
    """Importing a package has no side effects: no os.environ reads at module level."""
    offenders = []
    for path in source_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.Expr) and "os.environ" in ast.unparse(node):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_who_is_calling_lives_in_one_package() -> None:
    """Transport stages, the end user, passwords, throttles and identities: endpoint/auth/ only."""
    auth = {p.stem for p in (ROOT / "endpoint" / "auth").glob("*.py")} - {"__init__"}
    assert {"stages", "oauth", "oauth_params", "nonces", "consumers", "end_user", "throttle"} <= auth
    moved = auth | {"authenticate", "identity"}
    strays = [p.name for p in (ROOT / "endpoint").glob("*.py") if p.stem in moved]
    assert strays == [], "authentication modules belong in endpoint/auth/"
