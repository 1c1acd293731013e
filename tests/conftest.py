"""Fixtures: a migrated database (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
the fake Slack Web API, the configuration and the signed-request driver."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
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
RECSYS, PLATFORM = "C0123RECSYS", "C0789PLATFORM"

TEST_CONFIG = f"""
timezone: Europe/Berlin
command: /scrum
teams:
  - name: recsys
    channel: {RECSYS}
    members: [{ALICE}, {BOB}, {DAVE}]
    leads: [{ALICE}]
    governance: {{channel: C0456GOV, approvers: [{CAROL}]}}
  - name: platform
    channel: {PLATFORM}
    members: [{FRANK}]
"""


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return parse_config(TEST_CONFIG)


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
    yield engine


@pytest.fixture
async def session(db: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(db)() as s:
        yield s


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


@pytest.fixture
async def slack(
    db: AsyncEngine, config: AppConfig, settings: Settings, fake_slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[SlackDriver]:
    """The whole app, driven as Slack drives it, as Alice in the recsys channel."""
    fake_slack.reset()
    app = create_web_app(
        settings=settings, config=config, engine=db, client=web_client(settings), clock=clock
    )
    driver = SlackDriver(app, fake_slack, channel=RECSYS, user=ALICE)
    yield driver
    await driver.settle()
    await driver.http.aclose()
