"""The notes of the configuration reference: about settings that exist, in words fit for the page."""

from __future__ import annotations

import re

from endpoint.commands import docgen
from endpoint.commands.docgen_notes import FIELD_NOTES, INTRO, SECTION_NOTES
from endpoint.config.settings import ENV_PREFIX, section_types


def test_every_note_names_a_setting_or_section_that_exists() -> None:
    known = {f"{doc.title.strip('[]')}.{key.name}" for doc in docgen.sections() for key in doc.keys}
    assert set(FIELD_NOTES) <= known
    assert set(SECTION_NOTES) <= set(section_types())


def test_notes_are_single_sentences_of_plain_text() -> None:
    for name, note in {**FIELD_NOTES, **SECTION_NOTES}.items():
        assert note == " ".join(note.split()), f"{name}: one line, single spaces"
        assert note.rstrip()[-1] in ".:", f"{name}: end with a full stop"
        assert "|" not in note, f"{name}: a '|' would split the table cell"


def test_the_intro_names_the_real_prefix_and_flags() -> None:
    text = INTRO.format(prefix=ENV_PREFIX)
    assert f"{ENV_PREFIX}ENDPOINT_PUBLIC_BASE_URL" in text
    for flag in ("--config", "--db", "--public-url", "--host", "--port", "--log-level", "--set"):
        assert re.search(rf"`{flag}[` ]", text), flag
