"""`audit S-n|E-n|R-n`: the decision history of one item, as recorded in the hash-chained audit log:
who did what and why, in words (criteria by their labels), at the time of the item's team; every commit
to a sprint, experiments added and their results are on the record; unknown and malformed ids refused."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services import audit
from bot.slack import ids
from bot.store.models import AuditEvent
from tests.conftest import ALICE, BOB, CAROL, DAVE, FRANK, GOV, PLATFORM, make_config
from tests.factories import rows, tx
from tests.slack import helpers
from tests.slack.helpers import make_ready, ok, shown
from tests.slack_driver import SlackDriver

FOOTER = "Every row is hash-chained; operators can prove it with `cadence audit verify`."
LINE = re.compile(r"^`#(\d+)` (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) · (<@\w+>|[^·<]+?) · (.+)$")
BERLIN = ZoneInfo("Europe/Berlin")

# a refused command stores nothing and sends nothing to Slack
refused = partial(helpers.refused, sends_nothing=True)


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


def lines(body: dict[str, Any]) -> list[re.Match[str]]:
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    found = [LINE.match(line) for text in texts for line in text.split("\n") if line.startswith("`#")]
    assert found and all(found), texts
    return [m for m in found if m]


def history(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    """The log lines of an audit reply as (seq, who, what was done)."""
    return [(int(m.group(1)), m.group(3), m.group(4)) for m in lines(body)]


def done(body: dict[str, Any]) -> list[str]:
    """What was done, line by line."""
    return [what for _, _, what in history(body)]


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


async def test_audit_of_a_story_reads_as_sentences_at_the_team_time(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, 'ready S-1 validation_dataset=n/a reason="no PII"')
    await ok(
        slack,
        'dod S-1 data_lineage=warehouse.v7 model_evaluation=ndcg+3% rollback_plan=pin-v6 monitoring=n/a reason="batch only"',
        user=DAVE,
    )
    await ok(slack, "story done S-1", user=BOB)

    body = await ok(slack, "audit S-1", ephemeral=True)

    assert body["text"] == "Audit log for S-1"
    assert head(body) == "*Audit log · S-1* — 3 decisions · times in Europe/Berlin"
    assert history(body) == [
        (1, f"<@{ALICE}>", "waived Validation data (Definition of Ready): “no PII”"),
        (2, f"<@{DAVE}>", "waived Monitoring (Definition of Done): “batch only”"),
        (3, f"<@{BOB}>", "closed it: the Definition of Done is met"),
    ]
    assert FOOTER in shown(body)
    assert "ready.waive" not in shown(body) and "validation_dataset" not in shown(body)
    # each line is a stored row: same sequence number, actor, and its time in Berlin, not UTC
    stored = await events(db, "S-1")
    assert [(e.seq, e.actor, e.action) for e in stored] == [
        (1, ALICE, "ready.waive"),
        (2, DAVE, "done.waive"),
        (3, BOB, "story.done"),
    ]
    assert [m.group(2) for m in lines(body)] == [f"{e.at.astimezone(BERLIN):%Y-%m-%d %H:%M}" for e in stored]
    assert "UTC" not in shown(body)


async def test_audit_times_are_in_the_time_zone_of_the_items_team(make_app, db):
    config = make_config(platform={"timezone": "Asia/Tokyo"})
    async with make_app(config, user=FRANK, channel=PLATFORM) as slack:
        await ok(slack, "story add Autoscaler")
        await ok(slack, 'ready S-1 data_contract=n/a reason="internal"')
        # asked from the recsys channel, by Alice: still the platform team's zone
        body = await ok(slack, "audit S-1", user=ALICE, channel="C0123RECSYS")
    [row] = await events(db, "S-1")
    assert head(body).endswith("· times in Asia/Tokyo")
    [line] = lines(body)
    assert line.group(2) == f"{row.at.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M}"


async def test_audit_of_a_story_lists_only_that_story(slack, db):
    await ok(slack, "story add One")
    await ok(slack, "story add Two")
    await ok(slack, 'ready S-2 data_contract=n/a reason="two only"')
    await ok(slack, 'ready S-1 data_contract=n/a reason="one only"')

    assert done(await ok(slack, "audit S-1")) == ["waived Data contract (Definition of Ready): “one only”"]
    assert done(await ok(slack, "audit s-2")) == ["waived Data contract (Definition of Ready): “two only”"]


async def test_audit_of_a_story_without_decisions_says_so(slack, db):
    await ok(slack, "story add Untouched")
    await ok(slack, "ready S-1 data_available=clicks@v3")  # an answer is not a decision

    body = await ok(slack, "audit S-1")

    assert body["text"] == "No decisions recorded for S-1"
    assert "No decisions are recorded for *S-1* yet." in shown(body)


async def test_every_commit_to_a_sprint_is_on_the_record(slack, db):
    await ok(slack, 'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18')
    await ok(slack, 'sprint start "Sprint 2" --from 2026-12-21 --to 2027-01-01')
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "ready S-1 acceptance_criteria=tests dependencies=none")
    await ok(slack, 'sprint commit S-1 --sprint "Sprint 1"')
    await ok(slack, 'sprint commit S-1 --sprint "Sprint 2"', user=ALICE)

    assert done(await ok(slack, "audit S-1")) == [
        "committed it to sprint Sprint 1",
        "committed it to sprint Sprint 2 (moved from Sprint 1)",
    ]


async def test_audit_of_a_forced_commit_shows_its_reason_and_what_the_story_lacked(slack, db):
    await ok(slack, 'sprint start "Sprint 1" --from 2026-12-07 --to 2026-12-18')
    await ok(slack, "story add Fix login --type eng")
    await ok(slack, "ready S-1 dependencies=none")
    await ok(slack, 'sprint commit S-1 --sprint "Sprint 1" --force reason="exec deadline"')

    assert history(await ok(slack, "audit S-1")) == [
        (
            1,
            f"<@{ALICE}>",
            "committed it to sprint Sprint 1 although not Ready (it lacked Acceptance criteria): “exec deadline”",
        )
    ]


async def test_a_criterion_no_longer_configured_reads_as_its_key(make_app, db):
    async with make_app(make_config()) as slack:
        await ok(slack, "story add Train the ranker")
        await ok(slack, 'ready S-1 data_contract=n/a reason="internal data"')
    renamed = make_config(readiness={"ml": [{"key": "schema", "label": "Schema"}]})
    async with make_app(renamed) as slack:
        assert done(await ok(slack, "audit S-1")) == [
            "waived data contract (Definition of Ready): “internal data”"
        ]


async def test_story_lifecycle_rows_read_as_sentences(slack, db):
    """Rows as the story lifecycle writes them (start, block, unblock, drop from a sprint, archive,
    a commit after the sprint started)."""
    await ok(slack, "story add Train the ranker")
    rows_written = [
        ("story.start", {"from": "open", "to": "in_progress"}),
        ("story.block", {"from": "in_progress", "to": "blocked", "reason": "GPU quota"}),
        ("story.start", {"from": "blocked", "to": "in_progress"}),
        ("sprint.drop", {"sprint": "Sprint 1", "team": "recsys", "points": 3}),
        ("sprint.commit", {"sprint": "Sprint 2", "team": "recsys", "points": 3, "scope_added": True}),
        ("story.archive", {"from": "in_progress", "to": "archived"}),
    ]
    async with tx(db) as session:
        for action, payload in rows_written:
            await audit.record(session, actor=BOB, action=action, subject="S-1", payload=payload)

    assert done(await ok(slack, "audit S-1")) == [
        "started work on it",
        "blocked it: “GPU quota”",
        "unblocked it: back in progress",
        "dropped it from sprint Sprint 1 back to the backlog",
        "committed it to sprint Sprint 2 as scope added after the sprint started",
        "archived it: nobody will do it",
    ]


async def test_an_action_without_a_phrase_of_its_own_still_reads_well(slack, db):
    """A service that audits a new kind of action needs no change to the audit command: its verb and
    what its payload says are shown."""
    await ok(slack, "story add Train the ranker")
    async with tx(db) as session:
        await audit.record(
            session,
            actor=BOB,
            action="story.split",
            subject="S-1",
            payload={"sprint": "Sprint 1", "reason": "no capacity <!here>", "missing": ["data_contract"]},
        )
        await audit.record(
            session,
            actor="api:pipeline",
            action="story.re_estimate",
            subject="S-1",
            payload={"from": 3, "to": 5},
        )

    assert history(await ok(slack, "audit S-1")) == [
        (1, f"<@{BOB}>", "split · sprint Sprint 1: “no capacity &lt;!here&gt;”"),
        (2, "api:pipeline", "re estimate · from 3 to 5"),
    ]


# ── experiments ──────────────────────────────────────────────────────────────────────────────


async def test_audit_of_an_experiment_shows_it_added_its_results_and_its_status_changes(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower --metric ndcg --baseline 0.30 --target 0.35")
    await ok(slack, "exp status E-1 running")
    await ok(slack, "exp result E-1 ndcg=0.4 recall=0.61 run=abc123", user=DAVE)
    await ok(slack, "exp result E-1 ndcg=0.4 recall=0.61 run=abc123", user=DAVE)  # the same again
    await ok(slack, 'exp status E-1 abandoned reason="data leak found"', user=BOB)

    body = await ok(slack, "audit E-1")

    assert head(body) == "*Audit log · E-1* — 4 decisions · times in Europe/Berlin"
    assert history(body) == [
        (1, f"<@{ALICE}>", "added it to S-1 as “Two-tower” (ndcg: baseline 0.3, target 0.35)"),
        (2, f"<@{ALICE}>", "moved it from proposed to running"),
        (3, f"<@{DAVE}>", "recorded ndcg=0.4, recall=0.61 (run abc123)"),
        (4, f"<@{BOB}>", "moved it from running to abandoned: “data leak found”"),
    ]
    assert [json.loads(e.payload) for e in await events(db, "E-1")][1:] == [
        {"from": "proposed", "to": "running", "reason": ""},
        {"metrics": {"ndcg": 0.4, "recall": 0.61}, "run": "abc123", "source": "slack"},
        {"from": "running", "to": "abandoned", "reason": "data leak found"},
    ]


async def test_a_changed_result_is_recorded_again_with_only_what_changed(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower")
    await ok(slack, "exp result E-1 ndcg=0.4 recall=0.6")
    await ok(slack, "exp result E-1 ndcg=0.42 recall=0.6")
    assert done(await ok(slack, "audit E-1"))[1:] == ["recorded ndcg=0.4, recall=0.6", "recorded ndcg=0.42"]


async def test_audit_of_a_new_experiment_shows_it_was_added(slack, db):
    await ok(slack, "story add Train the ranker")
    await ok(slack, "exp add S-1 Two-tower", user=BOB)
    assert history(await ok(slack, "audit E-1")) == [(1, f"<@{BOB}>", "added it to S-1 as “Two-tower”")]


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

    assert head(body) == "*Audit log · R-1* — 2 decisions · times in Europe/Berlin"
    assert history(body) == [
        (2, f"<@{ALICE}>", "asked for a production review of E-1 Two-tower"),
        (3, f"<@{CAROL}>", "rejected: “No rollback plan yet”"),
    ]
    stored = await events(db, "R-1")
    assert json.loads(stored[1].payload)["rationale"] == "No rollback plan yet"


async def test_audit_of_an_approved_review_without_a_rationale(slack, db):
    await open_review(slack)
    await decide(slack, ids.REVIEW_APPROVE, CAROL, None)

    assert history(await ok(slack, "audit r-1")) == [
        (2, f"<@{ALICE}>", "asked for a production review of E-1 Two-tower"),
        (3, f"<@{CAROL}>", "approved"),
    ]


async def test_audit_of_a_review_needing_two_approvals_counts_them(make_app, db):
    config = make_config(governance={"approvers": [CAROL, DAVE], "required_approvals": 2})
    async with make_app(config) as slack:
        await open_review(slack)
        await decide(slack, ids.REVIEW_APPROVE, CAROL, "fine")
        await decide(slack, ids.REVIEW_REQUEST_CHANGES, DAVE, "add monitoring")
        assert done(await ok(slack, "audit R-1"))[1:] == [
            "approved (1 of 2 approvals): “fine”",
            "requested changes: “add monitoring”",
        ]


async def test_audit_of_a_review_the_policy_opened_names_who_moved_the_status(make_app, db):
    config = make_config(governance={"review_on": {"succeeded": "production"}})
    async with make_app(config) as slack:
        await ok(slack, "story add Train the ranker")
        await ok(slack, "exp add S-1 Two-tower")
        await ok(slack, "exp status E-1 succeeded", user=DAVE)
        assert history(await ok(slack, "audit R-1")) == [
            (
                3,
                "the team's review policy",
                f"opened a production review of E-1 Two-tower when E-1 became succeeded (moved by <@{DAVE}>)",
            )
        ]


async def test_audit_of_a_pending_review_shows_the_request(slack, db):
    await open_review(slack)
    body = await ok(slack, "audit R-1", user=FRANK, channel=PLATFORM)
    assert history(body) == [(2, f"<@{ALICE}>", "asked for a production review of E-1 Two-tower")]


async def test_audit_escapes_what_people_wrote(slack, db):
    await open_review(slack)
    await decide(
        slack, ids.REVIEW_REQUEST_CHANGES, CAROL, "<!channel> fix <https://evil.example|this> & that"
    )

    body = await ok(slack, "audit R-1")

    [*_, (_, _, what)] = history(body)
    assert what == "requested changes: “&lt;!channel&gt; fix &lt;https://evil.example|this&gt; &amp; that”"
    assert "<!channel>" not in json.dumps(body)


# ── refused ──────────────────────────────────────────────────────────────────────────────────

REFUSED = [
    ("audit", ["Name one item, e.g. `audit S-4`, `audit E-2`, `audit R-1` or `audit D-3`."]),
    ("audit S-1 E-1", ["Name one item"]),
    ("audit X-1", ["'X-1' is not a story, experiment, review or drift incident id (S-4, E-2, R-1, D-3)."]),
    ("audit 42", ["'42' is not a story, experiment, review or drift incident id"]),
    ("audit D-1", ["There is no drift incident D-1."]),
    ("audit D-x", ["'D-X' is not a drift incident; write it as D-12."]),
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
    await refused(slack, db, command, *needles, usage="audit S-n|E-n|R-n|D-n")
