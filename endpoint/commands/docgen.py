"""docs/configuration.md, generated from the settings dataclasses so the reference cannot drift from the code.

    python -m endpoint.commands.docgen           # rewrite docs/configuration.md
    python -m endpoint.commands.docgen --check   # exit 1 when the file differs from what the code says

Sections come from ``endpoint.config.settings.section_types()`` in declaration order (a table of dataclasses,
such as ``acronis.datacenters``, gets a section of its own). Per key: the type and default of its dataclass
field; its meaning from the comments next to the field in the source (the comment lines right above it and the
comment on its own lines), read with ``ast`` and ``tokenize``; and the limits start-up enforces, from the
``ValueError("key: ...")`` messages of the class. Notes in endpoint/commands/docgen_notes.py come first where
a comment leaves something out; a note for an unknown name stops the generator, so no note outlives its
setting. tests/endpoint/commands/test_docgen.py fails when the file and the code disagree.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import re
import sys
import tokenize
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from endpoint.commands.docgen_notes import FIELD_NOTES, INTRO, SECTION_NOTES
from endpoint.config.settings import ENV_PREFIX, section_types

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "docs" / "configuration.md"
COMMAND = "python -m endpoint.commands.docgen"
# Citations of design notes that are not part of this repository ("(aps.md §1)"): left out of the reference.
_CITATION = re.compile(r",?\s*\b[\w-]+\.md §[\d.]*\d")
_EMPTY_PARENS = re.compile(r"\s*\(\s*\)")
_SECTION_PREFIX = re.compile(r"^`\[[a-z_.]+\]`:\s*")  # "``[aps]``: what ..." under the [aps] heading
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclasses.dataclass(frozen=True, slots=True)
class KeyDoc:
    name: str
    type: str
    default: str
    meaning: str


@dataclasses.dataclass(frozen=True, slots=True)
class SectionDoc:
    title: str  # "[endpoint]" or "[[acronis.datacenters]]"
    source: str  # where the dataclass is defined, relative to the repository
    intro: str
    keys: tuple[KeyDoc, ...]


@functools.cache
def _parsed(path: str) -> tuple[ast.Module, dict[int, str], tuple[str, ...]]:
    """A module's syntax tree, its comments by line number, and its lines."""
    text = Path(path).read_text(encoding="utf-8")
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    }
    return ast.parse(text), comments, tuple(text.splitlines())


def _class_node(cls: type[Any]) -> tuple[ast.ClassDef, dict[int, str], tuple[str, ...]]:
    """:raise LookupError: the class is not defined at the top level of its module's source."""
    tree, comments, lines = _parsed(inspect.getsourcefile(cls) or "")
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return node, comments, lines
    raise LookupError(f"{cls.__qualname__}: class definition not found in its module's source")


def _clean(text: str) -> str:
    """Markdown from a comment or docstring: single backticks, no citations, a capital first letter."""
    text = _EMPTY_PARENS.sub("", _CITATION.sub("", text.replace("``", "`"))).strip()
    text = _SECTION_PREFIX.sub("", text)
    if text and text[-1] not in ".!?:":
        text += "."
    return text[:1].upper() + text[1:]


def _sentences(*parts: str) -> str:
    return " ".join(cleaned for cleaned in map(_clean, parts) if cleaned)


def field_comments(cls: type[Any]) -> dict[str, str]:
    """Field name -> its comments, as written: the comment lines right above the field, then those on
    its own lines."""
    node, comments, lines = _class_node(cls)
    found: dict[str, str] = {}
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        above: list[str] = []
        line = statement.lineno - 1
        while line >= 1 and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        end = statement.end_lineno or statement.lineno
        inline = [comments[n] for n in range(statement.lineno, end + 1) if n in comments]
        text = " ".join(above + inline)
        if text:
            found[statement.target.id] = text
    return found


def _default_expressions(cls: type[Any]) -> dict[str, ast.expr]:
    node, _, _ = _class_node(cls)
    return {
        s.target.id: s.value
        for s in node.body
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None
    }


def _message(node: ast.expr, namespace: dict[str, Any]) -> str | None:
    """The text of a raised message; a placeholder that needs runtime values becomes "…"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            try:  # module constants only (our own source): "{', '.join(DB_MODES)}" -> "auto, inline, threads"
                result = eval(compile(ast.Expression(value.value), "<docgen>", "eval"), dict(namespace))
                parts.append(repr(result) if value.conversion == ord("r") else str(result))
            except Exception:  # self.x, locals: only known at run time
                parts.append("…")
    return "".join(parts)


def field_limits(cls: type[Any]) -> dict[str, list[str]]:
    """Field name -> what start-up refuses, from ``raise ValueError("name[/name]: reason")`` in the class."""
    node, _, _ = _class_node(cls)
    namespace = vars(sys.modules[cls.__module__])
    limits: dict[str, list[str]] = {}
    for item in ast.walk(node):
        if not (isinstance(item, ast.Raise) and isinstance(item.exc, ast.Call) and item.exc.args):
            continue
        if not (isinstance(item.exc.func, ast.Name) and item.exc.func.id == "ValueError"):
            continue
        text = _message(item.exc.args[0], namespace)
        prefix, sep, reason = (text or "").partition(": ")
        if not sep or " " in prefix:
            continue
        for name in prefix.split("/"):
            if reason not in limits.setdefault(name, []):
                limits[name].append(reason)
    return limits


def type_text(hint: Any) -> str:
    """A type in words: ``str | None`` is "string or unset", ``tuple[str, ...]`` "list of strings"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return type_text(inner[0]) + (" or unset" if len(inner) < len(args) else "")
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if dataclasses.is_dataclass(args[0]):
            return "array of tables"
        return f"list of {type_text(args[0])}s"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _toml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{item}"' if isinstance(item, str) else str(item) for item in value) + "]`"
    return f"`{value!r}`"


def _arithmetic(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):
        return _arithmetic(node.left) and _arithmetic(node.right)
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def default_text(field: dataclasses.Field[Any], expression: ast.expr | None) -> str:
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        return "**required**"
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    text = _toml(value)
    if expression is not None and isinstance(expression, ast.BinOp) and _arithmetic(expression):
        text += f" ({ast.unparse(expression)})"
    return text


def section_doc(title: str, path: str, cls: type[Any]) -> list[SectionDoc]:
    """The section of ``cls`` (its keys named ``path.key``), then one per table of dataclasses it holds."""
    comments, limits = field_comments(cls), field_limits(cls)
    expressions, hints = _default_expressions(cls), typing.get_type_hints(cls)
    keys, nested = [], []
    for field in dataclasses.fields(cls):
        dotted, hint = f"{path}.{field.name}", hints[field.name]
        table = ""
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else None
        if item is not None and dataclasses.is_dataclass(item):
            table = f"One `[[{dotted}]]` table each (below)."
            nested += section_doc(f"[[{dotted}]]", dotted, item)
        meaning = _sentences(FIELD_NOTES.get(dotted, ""), comments.get(field.name, ""), table)
        checked = [reason for reason in limits.get(field.name, ()) if reason.strip("… ")]
        if checked:
            meaning += f" *Checked at start:* {'; '.join(checked)}."
        default = default_text(field, expressions.get(field.name))
        keys.append(KeyDoc(field.name, type_text(hint), default, meaning.strip()))
    node, _, _ = _class_node(cls)
    intro = _sentences(SECTION_NOTES.get(path, ""), " ".join((ast.get_docstring(node) or "").split()))
    source = f"`{Path(inspect.getsourcefile(cls) or '').relative_to(REPO)}` (`{cls.__name__}`)"
    return [SectionDoc(title, source, intro, tuple(keys)), *nested]


def sections() -> list[SectionDoc]:
    """Every section of the configuration file, in the order Settings declares them.

    :raise LookupError: a note names a setting or section that does not exist.
    """
    found = [doc for name, cls in section_types().items() for doc in section_doc(f"[{name}]", name, cls)]
    paths = {doc.title.strip("[]") for doc in found}
    known = {f"{doc.title.strip('[]')}.{key.name}" for doc in found for key in doc.keys}
    stale = sorted((set(FIELD_NOTES) - known) | (set(SECTION_NOTES) - paths))
    if stale:
        raise LookupError(f"commands/docgen_notes.py describes what no longer exists: {', '.join(stale)}")
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "—"


def render() -> str:
    """The whole of docs/configuration.md."""
    docs = sections()
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{COMMAND}` from the settings dataclasses. Do not edit by hand: change the",
        "comments next to the fields (or endpoint/commands/docgen_notes.py) and run the command again. -->",
        "",
        INTRO.format(prefix=ENV_PREFIX).strip(),
        "",
        "Sections: " + ", ".join(f"[`{doc.title}`](#{_anchor(doc.title)})" for doc in docs) + ".",
    ]
    for doc in docs:
        out += ["", f"## `{doc.title}`", "", f"Defined in {doc.source}. {doc.intro}".rstrip(), ""]
        out += ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
        out += [f"| `{k.name}` | {k.type} | {k.default} | {_cell(k.meaning)} |" for k in doc.keys]
    return "\n".join(out) + "\n"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped."""
    return re.sub(r"[^a-z0-9_\- ]", "", title.lower()).replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: docs/configuration.md")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output}: out of date; run `{COMMAND}`", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"{args.output}: {'unchanged' if current == text else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
