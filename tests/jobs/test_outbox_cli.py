"""`cadence outbox list|retry|purge-dead` as an operator runs it, against a SQLite file."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.store.db import create_engine, session_factory, unit_of_work
from bot.store.models import OutboxMessage
from bot.store.outbox import enqueue, find
from tests.conftest import GOV, PLATFORM, RECSYS

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=ROOT,
        timeout=60,
    )


@dataclass
class Seeded:
    pending: int
    dead: int
    sent: int
    dead_edited: int  # dead, but a queued chat.update refers to it
    edit: int


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated by `cadence db upgrade`, once per module (the CLI takes about a second)."""
    path = tmp_path_factory.mktemp("outbox-cli") / "template.db"
    result = run("db", "upgrade", env={"DATABASE_URL": f"sqlite:///{path}"})
    assert result.returncode == 0, result.stderr
    assert "database is at revision" in result.stdout
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture
def database(migrated: Path, tmp_path: Path) -> dict[str, str]:
    """A fresh copy of the migrated database; the environment pointing at it."""
    path = tmp_path / "cadence.db"
    shutil.copyfile(migrated, path)
    return {"DATABASE_URL": f"sqlite:///{path}"}


def _in_db(env: dict[str, str], work):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        engine = create_engine(env["DATABASE_URL"])
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def rows(env: dict[str, str]) -> dict[int, OutboxMessage]:
    async def work(session):  # type: ignore[no-untyped-def]
        return {r.id: r for r in (await session.exec(select(OutboxMessage))).all()}

    return _in_db(env, work)


def seed(env: dict[str, str]) -> Seeded:
    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)

    async def work(session):  # type: ignore[no-untyped-def]
        async def put(key: str, channel: str, state: str = "pending", **kwargs) -> int:  # type: ignore[no-untyped-def]
            payload = kwargs.pop("payload", {"text": key})
            await enqueue(session, dedupe_key=key, channel=channel, payload=payload, not_before=now, **kwargs)
            row = await find(session, key)
            assert row is not None and row.id is not None
            if state == "dead":
                values = {"state": "dead", "attempts": 8, "last_error": "channel_not_found (permanent)"}
            elif state == "sent":
                values = {"state": "sent", "attempts": 1, "sent_at": now, "slack_ts": "1700000000.000001"}
            else:
                values = {}
            if values:
                await session.exec(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
            return row.id

        pending = await put("hello", RECSYS)
        dead = await put("lost", PLATFORM, "dead")
        sent = await put("done", GOV, "sent")
        dead_edited = await put("edited", RECSYS, "dead")
        edit = await put("edit", RECSYS, method="chat.update", payload={"text": "v2"}, update_of=dead_edited)
        return Seeded(pending, dead, sent, dead_edited, edit)

    return _in_db(env, work)


# ------------------------------------------------------------------------------------------------- list


def test_list_of_an_empty_outbox(database):
    result = run("outbox", "list", env=database)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "empty"


def test_list_prints_counts_then_rows_newest_first(database):
    ids = seed(database)
    result = run("outbox", "list", env=database)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dead=2 pending=2 sent=1"
    body = lines[1:]
    assert [int(line.split()[0]) for line in body] == sorted(
        [ids.pending, ids.dead, ids.sent, ids.dead_edited, ids.edit], reverse=True
    )
    by_id = {int(line.split()[0]): line for line in body}
    dead = by_id[ids.dead].split()
    assert dead[1:4] == ["dead", "chat.postMessage", PLATFORM]
    assert "attempts=8 channel_not_found (permanent) — invite the bot to #C0789PLATFORM" in by_id[ids.dead]
    assert "next=" not in by_id[ids.dead]  # it is not going anywhere
    assert by_id[ids.edit].split()[1:4] == ["pending", "chat.update", RECSYS]
    # a sent message says when it went (pending ones: test_list_shows_when_a_message_will_go…)
    assert by_id[ids.sent].split()[1] == "sent"
    assert "attempts=1 sent=2026-12-07T06:00:00Z" in by_id[ids.sent]


def test_list_shows_when_a_message_will_go_and_never_the_epoch(database):
    later = datetime(2099, 1, 1, 9, 30, tzinfo=UTC)

    async def work(session):  # type: ignore[no-untyped-def]
        await enqueue(
            session, dedupe_key="now", channel=RECSYS, payload={"text": "now"}
        )  # as soon as possible
        await enqueue(session, dedupe_key="later", channel=GOV, payload={"text": "later"}, not_before=later)

    _in_db(database, work)
    result = run("outbox", "list", env=database)
    assert result.returncode == 0, result.stderr
    later_line, now_line = result.stdout.splitlines()[1:]
    assert now_line.endswith("attempts=0 due now")
    assert later_line.endswith("attempts=0 next=2099-01-01T09:30:00Z")
    assert "1970" not in result.stdout


@pytest.mark.parametrize(
    ("error", "channel", "says"),
    [
        ("not_in_channel (permanent)", GOV, "invite the bot to #C0456GOV (type /invite and the app's name"),
        (
            "channel_not_found (permanent)",
            RECSYS,
            "invite the bot to #C0123RECSYS if it is a private channel",
        ),
        ("invalid_auth (permanent)", RECSYS, None),
        ("channel_not_found (permanent)", "U02BOB", None),  # a DM: no channel to invite the bot to
    ],
)
def test_list_tells_the_operator_to_invite_the_bot_where_slack_says_it_is_not_in(
    database, error, channel, says
):
    async def work(session):  # type: ignore[no-untyped-def]
        await enqueue(session, dedupe_key="x", channel=channel, payload={"text": "x"})
        await session.exec(
            update(OutboxMessage).values(state="dead", attempts=1, last_error=error)  # type: ignore[call-overload]
        )

    _in_db(database, work)
    [line] = run("outbox", "list", env=database).stdout.splitlines()[1:]
    if says is None:
        assert line.endswith(f"attempts=1 {error}") and "invite" not in line
    else:
        assert f"attempts=1 {error} — {says}" in line
        assert line.endswith("then retry")


def test_list_filters_by_state_and_limits(database):
    ids = seed(database)
    result = run("outbox", "list", "--state", "dead", env=database)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dead=2 pending=2 sent=1"  # the counts are always the whole outbox
    assert [int(line.split()[0]) for line in lines[1:]] == sorted([ids.dead, ids.dead_edited], reverse=True)

    result = run("outbox", "list", "--limit", "1", env=database)
    assert [int(line.split()[0]) for line in result.stdout.splitlines()[1:]] == [ids.edit]

    result = run("outbox", "list", "--state", "nonsense", env=database)
    assert result.returncode == 2 and "invalid choice" in result.stderr


# ------------------------------------------------------------------------------------------------ retry


def test_retry_requeues_a_dead_message(database):
    ids = seed(database)
    before = datetime.now(UTC)
    result = run("outbox", "retry", str(ids.dead), env=database)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"outbox message {ids.dead} queued again"

    row = rows(database)[ids.dead]
    assert row.state == "pending" and row.attempts == 0 and row.locked_until is None
    assert before - timedelta(seconds=1) <= row.next_attempt_at <= datetime.now(UTC)
    # nothing else changed
    after = rows(database)
    assert after[ids.dead_edited].state == "dead" and after[ids.pending].state == "pending"

    listed = run("outbox", "list", env=database)
    assert listed.stdout.splitlines()[0] == "dead=1 pending=3 sent=1"


@pytest.mark.parametrize("which", ["unknown", "pending", "sent"])
def test_retry_of_an_unknown_or_live_message_fails(database, which):
    ids = seed(database)
    target = {"unknown": 999_999, "pending": ids.pending, "sent": ids.sent}[which]
    before = {i: r.model_dump() for i, r in rows(database).items()}

    result = run("outbox", "retry", str(target), env=database)

    assert result.returncode == 1
    assert f"outbox message {target} does not exist or is not dead" in result.stderr
    assert result.stdout == ""
    assert {i: r.model_dump() for i, r in rows(database).items()} == before


def test_retry_without_an_id_is_a_usage_error(database):
    seed(database)
    before = {i: r.model_dump() for i, r in rows(database).items()}
    result = run("outbox", "retry", env=database)
    assert result.returncode == 2
    assert "outbox retry needs the id of a dead message" in result.stderr
    assert {i: r.model_dump() for i, r in rows(database).items()} == before


def test_retry_with_a_non_numeric_id_is_a_usage_error(database):
    result = run("outbox", "retry", "S-1", env=database)
    assert result.returncode == 2 and "invalid int value" in result.stderr


# ------------------------------------------------------------------------------------------- purge-dead


def test_purge_dead_removes_dead_messages_nothing_refers_to(database):
    ids = seed(database)
    result = run("outbox", "purge-dead", env=database)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "purged 1 dead message"

    left = rows(database)
    assert ids.dead not in left
    assert set(left) == {ids.pending, ids.sent, ids.dead_edited, ids.edit}
    assert left[ids.dead_edited].state == "dead"  # a queued edit still refers to it

    again = run("outbox", "purge-dead", env=database)
    assert again.returncode == 0 and again.stdout.strip() == "purged 0 dead messages"
    assert run("outbox", "list", env=database).stdout.splitlines()[0] == "dead=1 pending=2 sent=1"


def test_inspecting_the_outbox_needs_no_slack_credentials(database):
    # run() strips every SLACK_* variable
    result = run("outbox", "list", env=database)
    assert result.returncode == 0, result.stderr
    assert "SLACK" not in result.stderr
