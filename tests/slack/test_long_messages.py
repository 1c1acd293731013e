"""Long text is split across sections, never cut off: the end of a long standup summary or a
decided review with long rationales still reaches people."""

from bot.notify.templates import Renderer
from bot.slack.blocks import SECTION_CHARS, sections
from bot.slack.blocks.ceremonies import plain


def _texts(blocks):
    return [b["text"]["text"] if isinstance(b, dict) else b.text.text for b in blocks]


def test_long_text_becomes_several_sections_with_nothing_lost():
    lines = [f"<@U0{n:04d}> " + "answer " * 60 for n in range(30)]
    parts = _texts(sections("\n".join(lines)))
    assert len(parts) > 1 and all(len(p) <= SECTION_CHARS for p in parts)
    assert "\n".join(parts).split("\n") == lines


def test_a_single_huge_line_is_cut_between_words_and_never_inside_a_mention_or_entity():
    line = ("&amp; <@U01ALICE> word " * 400).strip()
    parts = _texts(sections(line))
    assert all(len(p) <= SECTION_CHARS for p in parts)
    for part in parts:
        assert part.count("<") == part.count(">")
        assert part.count("&") == part.count(";")
    assert " ".join(parts).split() == line.split()


def test_a_standup_summary_of_many_long_answers_keeps_who_did_not_answer():
    answered = [{"user": f"U0{n:04d}", "today": "x" * 450, "blockers": ""} for n in range(9)]
    text = Renderer().render(
        "messages/standup_summary.md.j2", answered=answered, missing=["U09LATE"], away=[]
    )
    assert len(text) > 3000
    message = plain(text)
    assert all(len(t) <= SECTION_CHARS for t in _texts(message["blocks"]))
    assert "No update from <@U09LATE>." in _texts(message["blocks"])[-1]
