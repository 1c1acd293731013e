"""The database failing under a person's request: a lock held longer than Slack waits, a table locked
for good, a server that is not there. The person gets a sentence within Slack's 3 seconds, nothing is
changed, and once the database is back everything works as before."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.slack import ids
from bot.slack.budget import TOO_SLOW
from bot.slack.context import UNAVAILABLE
from bot.store.db import create_engine, session_factory, unit_of_work
from bot.store.models import Story
from tests.conftest import ALICE, RECSYS
from tests.slack.helpers import new_story, ok, replies, warning
from tests.slack_driver import SlackDriver

SLACK_WAITS = 3.0


@pytest.fixture(autouse=True)
def _slacks_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget as it is in production (the suite widens it elsewhere)."""
    from bot.slack import budget

    monkeypatch.setattr(budget, "ACK_BUDGET", 2.5)


async def stories(db) -> list[str]:  # type: ignore[no-untyped-def]
    async with unit_of_work(session_factory(db)) as s:
        return [st.title for st in (await s.exec(select(Story))).all()]


@contextmanager
def sqlite_write_lock(db) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Another process's long write: SQLite's write lock held from outside the app."""
    other = sqlite3.connect(make_url(str(db.url)).database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


@asynccontextmanager
async def postgres_table_lock(table: str) -> AsyncIterator[None]:
    """A migration or a stuck session holding a table: every statement on it waits."""
    import asyncpg

    u = make_url(os.environ["TEST_DATABASE_URL"])
    conn = await asyncpg.connect(user=u.username, host=u.host, port=u.port or 5432, database=u.database)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        await tx.rollback()
    finally:
        await conn.close()


async def timed(call) -> tuple[httpx.Response, float]:  # type: ignore[no-untyped-def]
    began = time.monotonic()
    response = await call
    return response, time.monotonic() - began


async def test_a_long_sqlite_lock_gets_a_sentence_in_time_and_changes_nothing(slack: SlackDriver, db):
    if db.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL's table lock is the next test")
    with sqlite_write_lock(db):
        response, took = await timed(slack.command("story add Train the ranker"))
        warning(response, UNAVAILABLE, usage=False)
        assert took < SLACK_WAITS, took
        # reading needs no write lock: a list still answers while the lock is held
        listed = await ok(slack, "story list")
        assert "no stories" in listed["text"].lower() or "S-" not in listed["text"]
    assert await stories(db) == []
    await new_story(slack)  # the lock gone, the same command works, as S-1: no number was used up
    assert await stories(db) == ["Train the ranker"]
    assert "S-1" in (await ok(slack, "story show S-1"))["text"]


async def test_a_table_locked_past_slacks_patience_gets_a_sentence_in_time(slack: SlackDriver, db):
    if db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's table lock; SQLite's write lock is the test before")
    await new_story(slack, "Before the lock")
    async with postgres_table_lock("story"):
        response, took = await timed(slack.command("story add Train the ranker"))
        warning(response, TOO_SLOW, usage=False)
        assert took < SLACK_WAITS, took
    assert await stories(db) == ["Before the lock"]
    await new_story(slack)
    assert sorted(await stories(db)) == ["Before the lock", "Train the ranker"]


async def test_a_click_that_meets_a_locked_database_is_answered_through_its_response_url(
    slack: SlackDriver, db
):
    await new_story(slack)
    lock = sqlite_write_lock(db) if db.dialect.name == "sqlite" else None
    if lock is not None:
        with lock:
            response = await slack.click(ids.MARK_DONE, "S-1")
    else:
        async with postgres_table_lock("story"):
            response = await slack.click(ids.MARK_DONE, "S-1")
    assert response.status_code == 200
    (reply,) = replies(slack)
    assert reply["text"] in (f":warning: {UNAVAILABLE}", f":warning: {TOO_SLOW}")
    assert "S-1" not in "".join(c.args.get("text", "") for c in slack.fake.of("chat.postMessage"))


async def test_with_no_database_server_at_all_a_person_still_gets_a_sentence(config, settings, fake_slack):
    from bot.web import create_web_app

    engine = create_engine("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    app = create_web_app(settings=settings, config=config, engine=engine)
    driver = SlackDriver(app, fake_slack, channel=RECSYS, user=ALICE)
    try:
        for text in ("story add Train the ranker", "story list", "sprint plan"):
            response, took = await timed(driver.command(text))
            warning(response, UNAVAILABLE, usage=False)
            assert took < SLACK_WAITS
        assert (await driver.http.get("/readyz")).status_code == 503
    finally:
        await driver.http.aclose()
        await engine.dispose()


async def test_a_database_back_after_an_outage_serves_the_same_app_again(
    config, settings, fake_slack, tmp_path
):
    """The same process, first without its database file's directory, then with it: no restart."""
    from bot.store.migrate import upgrade
    from bot.web import create_web_app

    where = tmp_path / "later"
    engine = create_engine(f"sqlite:///{where}/cadence.db")
    app = create_web_app(settings=settings, config=config, engine=engine)
    driver = SlackDriver(app, fake_slack, channel=RECSYS, user=ALICE)
    try:
        warning(await driver.command("story add Train the ranker"), UNAVAILABLE, usage=False)
        where.mkdir()
        await upgrade(engine)
        await asyncio.sleep(0)
        await new_story(driver)
        assert await stories(engine) == ["Train the ranker"]
    finally:
        await driver.http.aclose()
        await engine.dispose()


async def test_reading_commands_asked_during_an_outage_answer_once_the_database_is_back(
    config, settings, fake_slack, tmp_path
):
    """`story list` and `sprint plan` read through the SQLite reader's one kept connection (Reads.run):
    one that could not be opened during the outage is opened on the first read after it."""
    from bot.store.migrate import upgrade
    from bot.web import create_web_app

    where = tmp_path / "later"
    engine = create_engine(f"sqlite:///{where}/cadence.db")
    app = create_web_app(settings=settings, config=config, engine=engine)
    driver = SlackDriver(app, fake_slack, channel=RECSYS, user=ALICE)
    try:
        for text in ("story list", "sprint plan"):
            warning(await driver.command(text), UNAVAILABLE, usage=False)
        where.mkdir()
        await upgrade(engine)
        await new_story(driver)
        listed = await ok(driver, "story list")
        assert "S-1" in str(listed["blocks"]) and "Train the ranker" in str(listed["blocks"])
    finally:
        await driver.http.aclose()
        await app.state.deps.reads.dispose()
        await engine.dispose()


async def test_the_api_answers_503_with_retry_after_while_the_database_is_down(config, settings):
    """A sender that retries on 5xx (Alertmanager, a training job's client) tries again later."""
    from bot.web import create_web_app

    engine = create_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    token_settings = dataclasses.replace(settings, api_tokens=("ci=fault-token",))
    app = create_web_app(settings=token_settings, config=config, engine=engine)
    reading = {"model": "ranker", "metric": "psi", "value": 0.3, "window_end": "2026-12-01T10:00:00Z"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.post(
                "/api/v1/drift",
                json={"readings": [reading]},
                headers={"authorization": "Bearer fault-token"},
            )
    finally:
        await engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "30"
    assert "nothing was stored" in response.json()["detail"]
