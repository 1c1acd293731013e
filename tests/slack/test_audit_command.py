"""`audit S-n|E-n|R-n`: the decision history of one item, as recorded in the hash-chained audit log,
with who did what and why; unknown and malformed ids refused."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slack import ids
from bot.store.models import AuditEvent
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, GOV, PLATFORM
from tests.factories import rows
from tests.slack import helpers
from tests.slack.helpers import make_ready, ok, shown
from tests.slack_driver import SlackDriver

FOOTER = "Every row is hash-chained; operators can prove it with `cadence audit verify`."
LINE = re.compile(r"^`#(\d+)` (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC · (\S+) · \*([a-z_.]+)\*(?: — (.*))?$")

# a refused command stores nothing and sends nothing to Slack
refused = partial(helpers.refused, sends_nothing=True)


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


def history(body: dict[str, Any]) -> list[tuple[int, str, str, str | None]]:
    """The log lines of an audit reply as (seq, who, action, detail)."""
    [log] = [
        b["text"]["text"]
        for b in body["blocks"]
        if b["type"] == "section" and b["text"]["text"].startswith("`#")
    ]
    out = []
    for line in log.split("\n"):
        match = LINE.match(line)
        assert match, line
        out.append((int(match.group(1)), match.group(3), match.group(4), match.group(5)))
    return out


def head(body: dict[str, Any]) -> str:
    return body["blocks"][0]["text"]["text"]


async def events(db: AsyncEngine, subject: str) -> list[AuditEvent]:
    return sorted(await rows(db, AuditEvent, AuditEvent.subject == subject), key=lambda e: e.seq)


async def decide(slack: SlackDriver, action_id: str, user: str, rationale: str | None) -> None:
    await slack.click(action_id, "R-1", user=user, channel=GOV)
    response = await slack.submit(
        slack.last_view(), {ids.FIELD_RATIONALE: {"type": "plain_text_input", "value": rationale}}, user=user
    )
    assert response.text == "", response.text


# ── stories ──────────────────────────────────────────────────────────────────────────────────


async def test_audit_of_a_story_shows_waivers_and_done_with_actor_action_and_reason(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, 'ready S-1 data_contract=n/a reason="internal data, no producer"')
    await ok(
        slack,
        'dod S-1 data_lineage=warehouse.v7 model_evaluation=ndcg+3% rollback_plan=pin-v6 monitoring=n/a reason="batch only"',
        user=DAVE,
    )
    await ok(slack, "story done S-1", user=BOB)

    body = await ok(slack, "audit S-1", ephemeral=True)

    assert body["text"] == "Audit log for S-1"
    assert head(body) == "*Audit log · S-1* — 3 decision(s)"
    assert history(body) == [
        (1, "<@U01ALICE>", "ready.waive", "data_contract · “internal data, no producer”"),
        (2, "<@U03DAVE>", "done.waive", "monitoring · “batch only”"),
        (3, "<@U02BOB>", "story.done", None),
    ]
    assert FOOTER in shown(body)
    # each line is a stored row: same sequence number, time, actor and action
    stored = await events(db, "S-1")
    assert [(e.seq, e.actor, e.action) for e in stored] == [
        (1, ALICE, "ready.waive"),
        (2, DAVE, "done.waive"),
        (3, BOB, "story.done"),
    ]
    times = [m.group(2) for m in map(LINE.match, body["blocks"][1]["text"]["text"].split("\n")) if m]
    assert times == [f"{e.at:%Y-%m-%d %H:%M}" for e in stored]


async def test_audit_of_a_story_lists_only_that_story(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "story add Two")
    await ok(slack, 'ready S-2 data_contract=n/a reason="two only"')
    await ok(slack, 'ready S-1 data_contract=n/a reason="one only"')

    assert [h[3] for h in history(await ok(slack, "audit S-1"))] == ["data_contract · “one only”"]
    assert [h[3] for h in history(await ok(slack, "audit s-2"))] == ["data_contract · “two only”"]


async def test_audit_of_a_story_without_decisions_says_so(slack, db):
    await ok(slack, "story add Untouched")
    await ok(slack, "ready S-1 data_available=clicks@v3")  # an answer is not a decision

    body = await ok(slack, "audit S-1")

    assert body["text"] == "No decisions recorded for S-1"
    assert "No decisions are recorded for *S-1* yet." in shown(body)


async def test_audit_of_a_forced_commit_shows_its_reason(slack, db):
    await ok(slack, 'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18')
    await ok(slack, "story add Not ready yet")
    await ok(slack, 'sprint commit S-1 --sprint "Sprint 1" --force reason="exec deadline"')

    lines = history(await ok(slack, "audit S-1"))

    assert [(who, action, detail) for _, who, action, detail in lines] == [
        ("<@U01ALICE>", "sprint.force_commit", "sprint Sprint 1 · “exec deadline”")
    ]


async def test_audit_lines_name_the_criterion_waived_and_the_status_reached(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, 'ready S-1 data_contract=n/a reason="internal data"')
    await ok(slack, "exp add S-1 Two-tower")
    await ok(slack, 'exp status E-1 running reason="kicked off"')

    [(_, _, _, waiver)] = history(await ok(slack, "audit S-1"))
    [(_, _, _, moved)] = history(await ok(slack, "audit E-1"))

    assert "data_contract" in (waiver or "") or "Data contract" in (waiver or "")
    assert "internal data" in (waiver or "")
    assert "running" in (moved or "") and "kicked off" in (moved or "")


# ── experiments ──────────────────────────────────────────────────────────────────────────────


async def test_audit_of_an_experiment_shows_its_status_changes(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower --metric ndcg")
    await ok(slack, "exp status E-1 running")
    await ok(slack, "exp result E-1 ndcg=0.4")  # a result is not a decision
    await ok(slack, 'exp status E-1 abandoned reason="data leak found"', user=BOB)

    body = await ok(slack, "audit E-1")

    assert head(body) == "*Audit log · E-1* — 2 decision(s)"
    assert history(body) == [
        (1, "<@U01ALICE>", "experiment.status", "proposed → running"),
        (2, "<@U02BOB>", "experiment.status", "running → abandoned · “data leak found”"),
    ]
    assert [json.loads(e.payload) for e in await events(db, "E-1")] == [
        {"from": "proposed", "to": "running", "reason": ""},
        {"from": "running", "to": "abandoned", "reason": "data leak found"},
    ]


async def test_audit_of_a_new_experiment_has_nothing_yet(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower")
    assert "No decisions are recorded for *E-1* yet." in shown(await ok(slack, "audit E-1"))


# ── reviews ──────────────────────────────────────────────────────────────────────────────────


async def open_review(slack: SlackDriver) -> None:
    await ok(slack, "story add Train the ranker")
    await make_ready(slack)
    await ok(slack, "exp add S-1 Two-tower --metric ndcg")
    await ok(slack, "exp review E-1")


async def test_audit_of_a_review_shows_the_request_and_the_decision_with_its_rationale(slack, db):
    await open_review(slack)
    await decide(slack, ids.REVIEW_REJECT, CAROL, "No rollback plan yet")

    body = await ok(slack, "audit R-1")

    assert head(body) == "*Audit log · R-1* — 2 decision(s)"
    assert history(body) == [
        (1, "<@U01ALICE>", "review.request", "production: E-1 Two-tower"),
        (2, "<@U09CAROL>", "review.reject", "“No rollback plan yet”"),
    ]
    stored = await events(db, "R-1")
    assert json.loads(stored[1].payload)["rationale"] == "No rollback plan yet"


async def test_audit_of_an_approved_review_without_a_rationale(slack, db):
    await open_review(slack)
    await decide(slack, ids.REVIEW_APPROVE, CAROL, None)

    assert history(await ok(slack, "audit r-1")) == [
        (1, "<@U01ALICE>", "review.request", "production: E-1 Two-tower"),
        (2, "<@U09CAROL>", "review.approve", None),
    ]


async def test_audit_of_a_pending_review_shows_the_request(slack, db):
    await open_review(slack)
    body = await ok(slack, "audit R-1", user=FRANK, channel=PLATFORM)
    assert history(body) == [(1, "<@U01ALICE>", "review.request", "production: E-1 Two-tower")]


async def test_audit_escapes_what_people_wrote(slack, db):
    await open_review(slack)
    await decide(
        slack, ids.REVIEW_REQUEST_CHANGES, CAROL, "<!channel> fix <https://evil.example|this> & that"
    )

    body = await ok(slack, "audit R-1")

    [*_, (_, _, _, detail)] = history(body)
    assert detail == "“&lt;!channel&gt; fix &lt;https://evil.example|this&gt; &amp; that”"
    assert "<!channel>" not in json.dumps(body)


# ── refused ──────────────────────────────────────────────────────────────────────────────────

REFUSED = [
    ("audit", ["Name one item, e.g. `audit S-4`, `audit E-2` or `audit R-1`."]),
    ("audit S-1 E-1", ["Name one item"]),
    ("audit X-1", ["'X-1' is not a story, experiment or review id (S-4, E-2, R-1)."]),
    ("audit 42", ["'42' is not a story, experiment or review id"]),
    ("audit D-1", ["'D-1' is not a story, experiment or review id"]),
    ("audit S-x", ["'S-X' is not a story id"]),
    ("audit E-x", ["'E-X' is not an experiment id"]),
    ("audit R-x", ["'R-X' is not a review id"]),
    ("audit Sprint", ["'SPRINT' is not a story id"]),
    ("audit S-99", ["There is no story S-99."]),
    ("audit E-99", ["There is no experiment E-99."]),
    ("audit R-99", ["There is no review R-99."]),
    ("audit S-1 --all", ["Unknown option --all (options here: none)"]),
]


@pytest.mark.parametrize(("command", "needles"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_unknown_and_malformed_ids_are_refused(slack, db, command, needles):
    await open_review(slack)
    await refused(slack, db, command, *needles, usage="audit S-n|E-n|R-n")
