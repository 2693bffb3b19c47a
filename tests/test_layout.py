"""The tree keeps its promises: tests mirrored per package, one-way imports, small documented modules."""

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
