"""Fixtures: a migrated database (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
the fake Slack Web API, the configuration (and `make_config` for one a test changes), the outbox worker,
and the whole app driven by signed requests."""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, OutboxConfig, Settings, parse_config
from bot.integrations.slack_directory import SlackDirectory
from bot.jobs.ceremonies import CeremonyJobs
from bot.jobs.outbox_worker import OutboxWorker, delivery_client
from bot.notify import Notifier
from bot.notify.templates import Renderer
from bot.slack.app import web_client
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.web import create_web_app
from tests.clock import FakeClock
from tests.fake_slack import FakeSlack
from tests.slack_driver import SECRET, SlackDriver

ALICE, BOB, DAVE, FRANK, CAROL = "U01ALICE", "U02BOB", "U03DAVE", "U04FRANK", "U09CAROL"
RECSYS, PLATFORM, GOV = "C0123RECSYS", "C0789PLATFORM", "C0456GOV"

# ── the configuration ────────────────────────────────────────────────────────────────────────

RECSYS_TEAM: dict[str, Any] = {
    "name": "recsys",
    "channel": RECSYS,
    "members": [ALICE, BOB, DAVE],
    "leads": [ALICE],
    "governance": {"channel": GOV, "approvers": [CAROL]},
}
PLATFORM_TEAM: dict[str, Any] = {"name": "platform", "channel": PLATFORM, "members": [FRANK]}


def _changed(base: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of `base` with `changes` made: a key set to None is removed."""
    out = copy.deepcopy(dict(base))
    for key, value in (changes or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def config_yaml(
    *,
    ceremonies: Mapping[str, Any] | None = None,
    governance: Mapping[str, Any] | None = None,
    recsys: Mapping[str, Any] | None = None,
    platform: Mapping[str, Any] | None = None,
    teams: Sequence[Mapping[str, Any]] = (),
    **top: Any,
) -> str:
    """The test configuration as YAML: Berlin time, `/scrum`, team recsys (Alice, Bob and Dave, led by
    Alice; reviews in C0456GOV decided by Carol) and team platform (Frank), with what a test changes:
    `ceremonies` of recsys; keys of recsys's `governance`; keys of the `recsys` or `platform` team;
    more `teams` after those two; and top-level keys (timezone, grace_minutes, mlflow, outbox …).
    A key given as None is removed."""
    recsys_team = _changed(RECSYS_TEAM, recsys)
    if governance:
        recsys_team["governance"] = _changed(recsys_team["governance"], governance)
    if ceremonies:
        recsys_team["ceremonies"] = dict(ceremonies)
    data = _changed({"timezone": "Europe/Berlin", "command": "/scrum"}, top)
    data["teams"] = [recsys_team, _changed(PLATFORM_TEAM, platform), *teams]
    return yaml.safe_dump(data, sort_keys=False)


def make_config(**changes: Any) -> AppConfig:
    """The test configuration with what a test changes (see config_yaml), parsed as the bot parses it."""
    return parse_config(config_yaml(**changes))


TEST_CONFIG = config_yaml()

# the ceremonies of a two-week sprint: a standup every working day, planning (with readiness nudges the
# day before and two hours before) on the first Monday, review and retro on the last Friday
SPRINT_CEREMONIES: dict[str, Any] = {
    "standup": {"cron": "30 9 * * mon-fri", "close_after_minutes": 120},
    "planning": {"cron": "0 10 * * mon", "every_weeks": 2, "nudge_hours_before": [24, 2]},
    "review": {"cron": "0 15 * * fri", "every_weeks": 2},
    "retro": {"cron": "0 16 * * fri", "every_weeks": 2},
}


@pytest.fixture(autouse=True)
def _answer_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded CI machine (browsers, servers and two databases beside the tests) can stall a request for
    seconds; the suite gives listeners 10 s, and the budget's own tests (tests/slack/test_faults.py)
    put Slack's back."""
    from bot.slack import budget

    monkeypatch.setattr(budget, "ACK_BUDGET", 10.0)


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return make_config()


# ── the database ─────────────────────────────────────────────────────────────────────────────


def _backends() -> list[object]:
    pg = os.environ.get("TEST_DATABASE_URL")
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=pytest.mark.skipif(
                not pg, reason="TEST_DATABASE_URL is not set: no PostgreSQL to test against"
            ),
        ),
    ]


@pytest.fixture(scope="session", params=_backends())
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cadence.db'}"
        eng = create_engine(url)
    else:
        eng = create_engine(os.environ["TEST_DATABASE_URL"])
        async with eng.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The migrated database, emptied before each test."""
    async with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            await conn.execute(table.delete())
        # emptying story and sprint raised their teams' revisions again (migration 0013's triggers)
        await conn.execute(SQLModel.metadata.tables["team_revision"].delete())
    yield engine


@pytest.fixture
async def session(db: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(db)() as s:
        yield s


# ── Slack, the clock, the ceremony jobs and the outbox worker ────────────────────────────────


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(fake_slack: FakeSlack) -> Settings:
    return Settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
    )


@pytest.fixture
def clock() -> FakeClock:
    """Time as the tests set it: Monday 7 December 2026, 07:00 in Berlin."""
    return FakeClock(datetime(2026, 12, 7, 6, 0, tzinfo=UTC))


@pytest.fixture
def make_jobs(
    db: AsyncEngine, clock: FakeClock, fake_slack: FakeSlack
) -> Callable[[AppConfig], CeremonyJobs]:
    """CeremonyJobs for a configuration, on the test database and clock, looking people up in the fake."""

    def build(config: AppConfig) -> CeremonyJobs:
        sessions = session_factory(db)
        client = delivery_client("xoxb-test-token", fake_slack.api_url)
        return CeremonyJobs(
            config=config,
            sessions=sessions,
            clock=clock,
            notifier=Notifier(config, sessions, Renderer(config.templates_dir), clock),
            directory=SlackDirectory(client, sessions, clock),
        )

    return build


@pytest.fixture
def make_worker(db: AsyncEngine, clock: FakeClock, fake_slack: FakeSlack) -> Callable[..., OutboxWorker]:
    """An outbox worker delivering to the fake Slack on the test clock (no slack_sdk retries, so every
    failure the fake injects reaches the worker's own backoff)."""

    def build(settings: OutboxConfig | None = None, **kwargs: object) -> OutboxWorker:
        client = AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url, retry_handlers=[])
        return OutboxWorker(session_factory(db), client, clock=clock, settings=settings, **kwargs)  # type: ignore[arg-type]

    return build


# ── the whole app ────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def make_app(
    db: AsyncEngine, settings: Settings, fake_slack: FakeSlack, clock: FakeClock
) -> Callable[..., AbstractAsyncContextManager[SlackDriver]]:
    """The whole app for a configuration, driven as Slack drives it, as `user` in `channel` (Alice in the
    recsys channel unless told otherwise), with the fake Slack emptied first; on leaving, the work started
    after the ack is waited for and the client closed."""

    @asynccontextmanager
    async def build(
        config: AppConfig, *, user: str = ALICE, channel: str = RECSYS
    ) -> AsyncIterator[SlackDriver]:
        fake_slack.reset()
        app = create_web_app(
            settings=settings, config=config, engine=db, client=web_client(settings), clock=clock
        )
        driver = SlackDriver(app, fake_slack, channel=channel, user=user)
        try:
            yield driver
            await driver.settle()
        finally:
            await driver.http.aclose()
            # The app's lifespan does not run here, so its own PostgreSQL reader pool is closed here: left
            # to the garbage collector, a suite's worth of them ran the server out of connections.
            await app.state.deps.reads.dispose()

    return build


@pytest.fixture
async def slack(
    make_app: Callable[..., AbstractAsyncContextManager[SlackDriver]], config: AppConfig
) -> AsyncIterator[SlackDriver]:
    """The whole app, driven as Slack drives it, as Alice in the recsys channel."""
    async with make_app(config) as driver:
        yield driver
