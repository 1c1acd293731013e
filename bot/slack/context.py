"""What a listener needs to answer one request: the shared dependencies and who asked, from where."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import AppConfig, Team
from bot.metrics import Metrics
from bot.notify import Notifier
from bot.services.errors import Unavailable
from bot.services.teams import require_reader, resolve_team, team_named
from bot.slack.answers import Answers
from bot.slack.followups import Followups
from bot.store.db import UNREACHABLE, Reads, unreachable
from bot.store.queries import team_revision

log = logging.getLogger(__name__)
S = TypeVar("S")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Deps:
    config: AppConfig
    sessions: async_sessionmaker[AsyncSession]
    followups: Followups
    notifier: Notifier  # every transaction that changes something runs through it (see transaction)
    clock: Clock
    reads: Reads  # transactions that only read (see reading and read)
    metrics: Metrics = field(default_factory=Metrics)  # this app's registry for /metrics
    answers: Answers = field(default_factory=Answers)  # lists and plans as rendered (see answer)

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One unit of work; the messages its changes cause are queued before it commits."""
        return _reachable(self.notifier.transaction())

    def reading(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A transaction for an answer that only shows something: it does not wait for the writer
        connection or take the write lock, and the database refuses any write made through it."""
        return _reachable(self.reads.reading())

    async def read(self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(session, …), a synchronous read of the services, reading only as `reading` does; on SQLite
        without aiosqlite's round trips to its thread (Reads.run). For the answers people ask for most."""
        async with _told_unreachable():
            return await self.reads.run(fn, *args, **kwargs)

    async def answer(
        self,
        team: str,
        key: Hashable,
        read: Callable[[Session], T],
        render: Callable[[T], dict[str, Any]],
    ) -> dict[str, Any]:
        """render(read(session)), or the answer kept for `key` if the team's stories and sprints are as
        they were when it was rendered (bot/slack/answers.py). `key` holds everything the answer depends
        on besides the team's rows: the command's words, the page, who asked if the answer is theirs."""
        kept = self.answers

        def revision_then_read(session: Session) -> tuple[int, dict[str, Any] | None, T | None]:
            revision = team_revision(session, team)  # first: what is read after is of it or newer
            found = kept.get((team, key), revision)
            return (revision, found, None) if found is not None else (revision, None, read(session))

        revision, found, fresh = await self.read(revision_then_read)
        if found is not None:
            self.metrics.answers.labels("kept").inc()
            return found
        answer = render(cast(T, fresh))  # nothing was kept, so read returned it
        kept.put((team, key), revision, answer)
        self.metrics.answers.labels("rendered").inc()
        return answer


UNAVAILABLE = (
    "Cadence cannot reach its database right now, so nothing was done. Try again in a minute; "
    "if it keeps happening, tell whoever runs Cadence."
)


@asynccontextmanager
async def _told_unreachable() -> AsyncIterator[None]:
    """A database that is down or locked told to the person in a sentence rather than as an error Slack
    shows as a failure."""
    try:
        yield
    except UNREACHABLE as exc:
        if not unreachable(exc):
            raise
        log.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0][:200])
        raise Unavailable(UNAVAILABLE) from exc


@asynccontextmanager
async def _reachable(transaction: AbstractAsyncContextManager[S]) -> AsyncIterator[S]:
    """The transaction (rolled back on any failure), a database that is down or locked told as a sentence."""
    async with _told_unreachable(), transaction as session:
        yield session


DEPS = "cadence_deps"  # the Bolt context key under which every listener finds the Deps


def deps_of(context: Mapping[str, Any]) -> Deps:
    """The dependencies a listener runs with, put in the Bolt context by the app's middleware."""
    deps = context[DEPS]
    assert isinstance(deps, Deps)
    return deps


@dataclass(frozen=True)
class Invocation:
    """One person's request: a command, a click or a form submission."""

    deps: Deps
    client: AsyncWebClient
    user_id: str
    channel_id: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    team_name: str | None = None  # a command's --team: which team it is for, wherever it was typed

    @property
    def config(self) -> AppConfig:
        return self.deps.config

    @property
    def command(self) -> str:
        return self.deps.config.command

    def team(self) -> Team:
        if self.team_name is not None:
            return team_named(self.deps.config, self.team_name)
        return resolve_team(self.deps.config, channel_id=self.channel_id, user_id=self.user_id)

    def may_read(self, team: Team | str, what: str) -> None:
        """Refuses (Forbidden) when the configuration keeps `what` of the team to its people."""
        found = self.deps.config.team(team) if isinstance(team, str) else team
        if found is not None:
            require_reader(self.deps.config, found, self.user_id, what=what)

    def today(self, team: Team) -> date:
        """The date in the team's time zone, by the clock the app runs on."""
        return self.deps.clock.now().astimezone(self.deps.config.team_timezone(team)).date()

    def open_modal(self, view: dict[str, Any]) -> None:
        """views.open after the ack: the trigger id stays valid for 3 seconds, plenty for a task."""
        self.deps.followups.spawn(
            self.client.views_open(trigger_id=self.trigger_id, view=view), what="views.open"
        )

    def reply_later(self, message: dict[str, Any], *, replace_original: bool = False) -> None:
        """Answer the person after the ack: through response_url, or as a DM where there is none."""
        if self.response_url:
            body = {**message, "replace_original": replace_original}
            self.deps.followups.spawn(
                _post_response_url(self.client, self.response_url, body), what="response_url"
            )
        else:
            args = {k: v for k, v in message.items() if k in ("text", "blocks")}
            self.deps.followups.spawn(
                self.client.chat_postMessage(channel=self.user_id, **args), what="dm reply"
            )

    @classmethod
    def of(cls, context: Mapping[str, Any], client: AsyncWebClient, body: dict[str, Any]) -> Invocation:
        """Who is asking, from a listener's Bolt arguments."""
        return cls.from_body(deps_of(context), client, body)

    @classmethod
    def from_body(cls, deps: Deps, client: AsyncWebClient, body: dict[str, Any]) -> Invocation:
        """Works for slash commands (flat form fields) and interactive payloads (nested)."""
        user_id = body.get("user_id") or body.get("user", {}).get("id", "")
        channel_id = body.get("channel_id") or (body.get("channel") or {}).get("id")
        response_url = body.get("response_url")
        view = body.get("view") or {}
        if view.get("private_metadata"):
            meta = json.loads(view["private_metadata"])
            channel_id = channel_id or meta.get("channel")
            response_url = response_url or meta.get("response_url")
        return cls(
            deps=deps,
            client=client,
            user_id=user_id,
            channel_id=channel_id,
            trigger_id=body.get("trigger_id"),
            response_url=response_url,
        )


async def _post_response_url(client: AsyncWebClient, url: str, body: dict[str, Any]) -> None:
    webhook = AsyncWebhookClient(url=url, timeout=10, retry_handlers=client.retry_handlers)
    response = await webhook.send_dict(body)
    if response.status_code >= 400:
        raise RuntimeError(f"response_url answered {response.status_code}: {response.body}")
