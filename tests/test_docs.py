"""The repository's Markdown stands on its own: every link stays inside the clone and points at something.

A clone from GitHub has nothing but the repository, so a link that climbs out of it (``../``), an absolute
path (``/work/...``) or a mention of the design notes the project was written from (``shared/``) leads
nowhere. Relative links must name an existing file or directory, and a ``#fragment`` into a Markdown file
must name one of its headings (GitHub's anchors).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"var", "node_modules", "build", "dist"}  # plus every hidden directory (.venv, .git, ...)
MUST_EXIST = ("README.md", "docs/README.md", "deploy/NETWORK.md", "proxy/mitm/README.md", "bench/README.md")

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_INLINE = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?=\s|$)", re.MULTILINE)
_HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)
# Paths that exist only on the machine the project was written on, never in a clone.
_OUTSIDE = re.compile(r"/work/|\.\./shared\b|\bshared/protocol\b")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts[:-1]
        if not any(part.startswith(".") or part in SKIPPED_DIRS for part in parts):
            found.append(path)
    return found


def prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans (their lines kept, empty): text and links."""

    def blank(match: re.Match[str]) -> str:
        return "\n" * match.group(0).count("\n")

    return _CODE_SPAN.sub(blank, _FENCE.sub(blank, text))


def links(text: str) -> list[str]:
    """Every link target of a Markdown document: inline, reference definitions, HTML href/src."""
    body = prose(text)
    return [m.group(1) for pattern in (_INLINE, _REFERENCE, _HTML) for m in pattern.finditer(body)]


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, markup and punctuation dropped, spaces to '-', repeats -1, -2."""
    seen: dict[str, int] = {}
    result = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # a link's text stays
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the links of one Markdown file inside ``root``, one line each."""
    text = path.read_text(encoding="utf-8")
    found = []
    for target in links(text):
        parts = urlsplit(target)
        if _OUTSIDE.search(target):
            found.append(f"{target}: leads outside the repository")
        elif _SCHEME.match(target):
            if parts.scheme not in ("http", "https", "mailto"):
                found.append(f"{target}: only http(s) and mailto links may leave the repository")
        elif target.startswith("/"):
            found.append(f"{target}: an absolute path; link relative to {path.relative_to(root)}")
        else:
            found += _relative(path, root, target)
    words = _REFERENCE.sub("", _INLINE.sub("]()", prose(text)))  # targets were checked above
    for number, line in enumerate(words.splitlines(), 1):
        if _OUTSIDE.search(line):
            found.append(f"line {number}: names a path outside the repository")
    return found


def _relative(path: Path, root: Path, target: str) -> list[str]:
    parts = urlsplit(target)
    file = (path.parent / unquote(parts.path)).resolve() if parts.path else path
    if not file.is_relative_to(root):
        return [f"{target}: leads outside the repository"]
    if not file.exists():
        return [f"{target}: no such file"]
    if parts.fragment and file.suffix == ".md":
        if parts.fragment not in anchors(file.read_text(encoding="utf-8")):
            return [f"{target}: no heading #{parts.fragment} in {file.relative_to(root)}"]
    return []


def test_the_documents_are_found() -> None:
    names = {str(path.relative_to(ROOT)) for path in markdown_files()}
    assert set(MUST_EXIST) <= names
    assert {"docs/callbacks.md", "docs/aps.md", "docs/outbound.md", "docs/configuration.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_resolve(path: Path) -> None:
    assert problems(path) == []


def test_the_checker_catches_what_it_promises(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Project\n", encoding="utf-8")
    (tmp_path / "docs" / "other.md").write_text("# Other page\n", encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "\n".join(
            [
                "# Title",
                "[up](../../shared/protocol/aps.md) [abs](/work/main/README.md) [gone](missing.md)",
                "[ok](other.md#other-page) [bad anchor](other.md#nothing) [file](file:///etc/passwd)",
                "[home](../README.md) [here](#title) [web](https://example.com/../x)",
                "[ref]: ../../outside.md",
                "See ../shared/protocol/aps.md for details.",
                "```sh",
                "cat ../shared/not-a-link.md  # code is not prose",
                "```",
                "`../shared/in/a/code/span` and https://connector.../... in prose are no links",
            ]
        ),
        encoding="utf-8",
    )
    assert problems(page, tmp_path) == [
        "../../shared/protocol/aps.md: leads outside the repository",
        "/work/main/README.md: leads outside the repository",
        "missing.md: no such file",
        "other.md#nothing: no heading #nothing in docs/other.md",
        "file:///etc/passwd: only http(s) and mailto links may leave the repository",
        "../../outside.md: leads outside the repository",
        "line 6: names a path outside the repository",
    ]


def test_anchors_follow_github() -> None:
    text = "# Configuration reference\n## `[acronis_jwt]`\n## 1. Transport: OAuth 1.0\n## Again\n## Again\n"
    assert anchors(text) == {
        "configuration-reference",
        "acronis_jwt",
        "1-transport-oauth-10",
        "again",
        "again-1",
    }
