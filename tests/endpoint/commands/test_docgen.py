"""docs/configuration.md is what the settings dataclasses say now; how comments, limits and types are read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from endpoint.commands import docgen
from endpoint.config.sections import ServerSettings
from endpoint.config.settings import section_types


@dataclasses.dataclass(frozen=True)
class Sample:
    """A section for the tests."""

    # Above the field,
    # on two lines.
    commented: int = 1  # and on its line
    size: int = 64 * 1024  # bytes
    plain: str = ""

    # A blank line separates this from the next field.
    spread: tuple[str, ...] = (
        "x",  # inside a statement over lines
    )
    hosts: tuple[str, ...] = ("a", "b")
    maybe: str | None = None
    required: float = dataclasses.field(default=0.5)

    def __post_init__(self) -> None:
        if self.commented < 0:
            raise ValueError("commented/size: must be >= 0")
        if self.plain.startswith(" "):
            raise ValueError(f"plain: {self.plain!r} starts with a space")
        if self.size > 10:
            raise ValueError("not a key: ignored")


@dataclasses.dataclass(frozen=True)
class Row:
    url: str
    retries: int = 3


@dataclasses.dataclass(frozen=True)
class Holder:
    """Holds rows."""

    rows: tuple[Row, ...] = ()  # the rows


def test_the_configuration_reference_is_current() -> None:
    """Fails when a setting, its default or its comment changed and docgen did not run again."""
    assert docgen.OUTPUT.read_text(encoding="utf-8") == docgen.render(), (
        "docs/configuration.md is out of date: run `python -m endpoint.commands.docgen` and commit the result"
    )


def test_every_section_and_setting_is_described() -> None:
    docs = {doc.title: doc for doc in docgen.sections()}
    for name, cls in section_types().items():
        doc = docs[f"[{name}]"]
        assert doc.intro, f"[{name}]: give {cls.__name__} a docstring (or a SECTION_NOTES entry)"
        assert [key.name for key in doc.keys] == [f.name for f in dataclasses.fields(cls)]
        undescribed = [key.name for key in doc.keys if not key.meaning or key.meaning.startswith("*")]
        assert undescribed == [], f"[{name}]: comment these fields in {cls.__name__}"
    assert "[[acronis.datacenters]]" in docs


def test_field_comments_come_from_the_lines_above_and_the_field_itself() -> None:
    assert docgen.field_comments(Sample) == {
        "commented": "Above the field, on two lines. and on its line",
        "size": "bytes",
        "spread": "A blank line separates this from the next field. inside a statement over lines",
    }


def test_limits_come_from_the_value_errors_of_the_class() -> None:
    assert docgen.field_limits(Sample) == {
        "commented": ["must be >= 0"],
        "size": ["must be >= 0"],
        "plain": ["… starts with a space"],
    }
    # Module constants in a message are evaluated: the reference lists the real choices.
    assert docgen.field_limits(ServerSettings)["db_mode"] == ["must be one of auto, inline, threads"]


def test_types_and_defaults_read_as_toml() -> None:
    hints = {"hosts": tuple[str, ...], "spread": str | None, "rows": tuple[Row, ...], "flag": bool}
    assert {name: docgen.type_text(hint) for name, hint in hints.items()} == {
        "hosts": "list of strings",
        "spread": "string or unset",
        "rows": "array of tables",
        "flag": "boolean",
    }
    fields = {f.name: f for f in dataclasses.fields(Sample)}
    expressions = docgen._default_expressions(Sample)
    assert docgen.default_text(fields["size"], expressions["size"]) == "`65536` (64 * 1024)"
    assert docgen.default_text(fields["hosts"], expressions["hosts"]) == '`["a", "b"]`'
    assert docgen.default_text(fields["maybe"], expressions["maybe"]) == "unset"
    assert docgen.default_text(fields["plain"], expressions["plain"]) == '`""`'
    assert docgen.default_text(dataclasses.fields(Row)[0], None) == "**required**"


def test_a_section_lists_its_tables_of_tables_after_it() -> None:
    docs = docgen.section_doc("[holder]", "holder", Holder)
    assert [doc.title for doc in docs] == ["[holder]", "[[holder.rows]]"]
    assert docs[0].keys[0].meaning == "The rows. One `[[holder.rows]]` table each (below)."
    assert docs[0].source == "`tests/endpoint/commands/test_docgen.py` (`Holder`)"
    assert [(key.name, key.default) for key in docs[1].keys] == [("url", "**required**"), ("retries", "`3`")]


def test_citations_of_notes_outside_the_repository_are_left_out() -> None:
    assert docgen._clean("accept http:// URIs (never in production, aps.md §1)") == (
        "Accept http:// URIs (never in production)."
    )
    assert docgen._clean("jobs that may answer 202 (aps.md §4.2)") == "Jobs that may answer 202."
    assert docgen._clean("``[aps]``: what the controller may ask for") == "What the controller may ask for."


def test_a_note_for_a_setting_that_is_gone_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(docgen.FIELD_NOTES, "server.no_such_key", "stale")
    with pytest.raises(LookupError, match="server.no_such_key"):
        docgen.sections()


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "configuration.md"
    assert docgen.main(["--check", "--output", str(output)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docgen.main(["--output", str(output)]) == 0
    assert docgen.main(["--check", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == docgen.render()
