"""Golden files: the sprint review of a fixed sprint (`bot.notify.review.sample()`) in each format, as
a person reads it. After a deliberate change of a template, regenerate them with
`UPDATE_GOLDEN=1 pytest tests/review/test_golden.py` and read the diff before committing."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from bot.notify.review import ReviewRenderer, messages, sample, slack_blocks

GOLDEN = Path(__file__).parent / "golden"
FILES = {"slack": "review.slack.txt", "md": "review.md", "html": "review.html", "json": "review.json"}


@pytest.mark.parametrize("fmt", list(FILES))
def test_each_format_matches_its_golden_file(fmt):
    text = ReviewRenderer().render(sample(), fmt).text
    path = GOLDEN / FILES[fmt]
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "rendered")
        )
        pytest.fail(f"the {fmt} review differs from its golden file:\n{diff}")


def test_the_golden_slack_review_is_one_message_of_headers_sections_and_dividers():
    [message] = messages(slack_blocks((GOLDEN / FILES["slack"]).read_text(encoding="utf-8")), fallback="x")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds[0] == "header" and set(kinds) == {"header", "section", "divider"}
    assert kinds.count("divider") == 3
