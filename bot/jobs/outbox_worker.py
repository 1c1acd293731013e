"""Delivers the outbox: in order per channel, about one message per second per channel, honouring
Retry-After, backing off on errors, dead-lettering after too many attempts, resuming after a restart."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import random
import socket
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import and_, delete, func, not_, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import OutboxConfig
from bot.store.db import unit_of_work
from bot.store.models import UPLOAD_METHOD, CeremonyRun, Counter, DriftIncident, OutboxMessage, Review
from bot.store.queries import insert_ignore

log = logging.getLogger(__name__)
PAUSE_KEY = "outbox_pause"  # a counter row holding, in Unix seconds, when a 429's Retry-After ends
UPLOAD_LEASES = 5  # a file upload is several calls: it holds its message this many leases
BATCH = 500
# Every chat.postMessage carries its outbox id in Slack's message metadata, so a send in doubt can be
# looked for in the channel before it is made again. A message with metadata of its own (an audit head)
# keeps its event type and gains the id in its payload.
TAG_TYPE = "cadence_outbox"
TAG_KEY = "cadence_outbox_id"
HISTORY_PAGES = 5  # of 200 messages each, from a minute before the attempt in doubt began
# Answers to that lookup meaning it cannot be made here (the app lacks a history scope, is not in the
# private channel, or the token cannot read DMs): the message is sent again, at least once.
UNVERIFIABLE = {
    "missing_scope",
    "not_in_channel",
    "channel_not_found",
    "not_allowed_token_type",
    "method_not_supported_for_channel_type",
    "thread_not_found",
    "no_permission",
    "access_denied",
}
# Errors Slack answers with ok=false that are worth trying again; any other is permanent.
RETRYABLE = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
}


def advice(channel: str, error: str | None) -> str:
    """What an operator can do about a message Slack refused for its channel; "" when nothing specific.
    The bot posts to public channels without joining (chat:write.public), but a private channel must
    invite it first; Slack then answers not_in_channel, or channel_not_found when it cannot see it."""
    if not error or channel[:1] not in ("C", "G"):
        return ""
    if "not_in_channel" in error:
        return f"invite the bot to #{channel} (type /invite and the app's name in that channel), then retry"
    if "channel_not_found" in error:
        return (
            f"invite the bot to #{channel} if it is a private channel (type /invite and the app's name in it), "
            f"or check that {channel} is the right channel id in the configuration; then retry"
        )
    return ""


def delivery_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client whose own retries cover short blips (slack_sdk's handlers, one retry each);
    longer outages and rate limits are the worker's backoff, so no call ever sleeps for long."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )


@dataclass
class Stats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    rate_limited: int = 0
    recovered: int = 0  # a send in doubt found in the channel: recorded as sent, not sent again
    unverified: int = 0  # a send in doubt that could not be looked for: sent again
    by_error: Tally[str] = field(default_factory=Tally)


class Claim(NamedTuple):
    row: OutboxMessage
    refs: dict[int, OutboxMessage]  # the messages it edits or replies to, by id
    in_doubt: bool  # an earlier attempt may have reached Slack
    since: datetime  # when that attempt began
    until: datetime  # when this claim's lease ends


def tag(metadata: Any, outbox_id: int) -> dict[str, Any]:
    """The message metadata that names the outbox row a message was sent from."""
    if isinstance(metadata, dict) and metadata.get("event_type"):
        payload = dict(metadata.get("event_payload") or {})
        return {"event_type": metadata["event_type"], "event_payload": {**payload, TAG_KEY: outbox_id}}
    return {"event_type": TAG_TYPE, "event_payload": {TAG_KEY: outbox_id}}


def tagged_id(metadata: Any) -> int | None:
    if not isinstance(metadata, dict):
        return None
    value = (metadata.get("event_payload") or {}).get(TAG_KEY)
    return value if isinstance(value, int) else None


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: AsyncWebClient,
        *,
        clock: Clock,
        settings: OutboxConfig | None = None,
        concurrency: int = 8,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.settings = settings or OutboxConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        self._limit = asyncio.Semaphore(concurrency)
        # told how long each message took from being due to being in Slack (the /metrics histogram)
        self.on_sent: Callable[[float], None] | None = None

    async def run_once(self) -> int:
        """Send the next due message of every channel that may send now; the number attempted."""
        now = self.clock.now()
        paused_until = await self._paused_until()
        if paused_until is not None and now < paused_until:
            return 0
        claimed = await self._claim_heads(now)
        await asyncio.gather(*(self._deliver(claim) for claim in claimed))
        return len(claimed)

    def lease(self, method: str) -> timedelta:
        """How long a claim holds a message; the send gives up (and counts as in doubt) before it ends."""
        seconds = self.settings.lease_seconds * (UPLOAD_LEASES if method == UPLOAD_METHOD else 1)
        return timedelta(seconds=seconds)

    async def next_due(self) -> datetime | None:
        """When something could next be sent (for sleeping between rounds)."""
        async with unit_of_work(self.sessions) as session:
            return (
                await session.exec(
                    select(OutboxMessage.next_attempt_at)
                    .where(col(OutboxMessage.state).in_(("pending", "sending")))
                    .order_by(col(OutboxMessage.next_attempt_at))
                    .limit(1)
                )
            ).first()

    async def _claim_heads(self, now: datetime) -> list[Claim]:
        interval = timedelta(seconds=self.settings.per_channel_interval_seconds)
        unsent = col(OutboxMessage.state).in_(("pending", "sending"))
        claimed = []
        async with unit_of_work(self.sessions) as session:
            # Only a channel's oldest unsent message may go, so take exactly those heads, however long
            # one channel's backlog is.
            # A message scheduled for later (not_before, never tried) does not hold up the channel; one
            # backing off after a failure does, so order holds for what has started to go out.
            scheduled = and_(
                col(OutboxMessage.state) == "pending",
                col(OutboxMessage.attempts) == 0,
                col(OutboxMessage.next_attempt_at) > now,
            )
            first_ids = (
                select(func.min(OutboxMessage.id))
                .where(unsent, not_(scheduled))
                .group_by(OutboxMessage.channel)
            )
            heads = (
                await session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(first_ids)))
            ).all()
            channels = [h.channel for h in heads]
            # Pacing is kept in the database, so two workers together still send one message per interval.
            last_claims: dict[str, datetime | None] = {}
            if channels:
                rows = await session.exec(
                    select(OutboxMessage.channel, func.max(OutboxMessage.claimed_at))
                    .where(col(OutboxMessage.channel).in_(channels))
                    .group_by(OutboxMessage.channel)
                )
                last_claims = dict(rows.all())
            ref_ids = {i for r in heads for i in (r.update_of, r.thread_of) if i}
            refs: dict[int, OutboxMessage] = {}
            if ref_ids:
                found = await session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(ref_ids)))
                refs = {r.id: r for r in found.all() if r.id is not None}
            for row in sorted(heads, key=lambda h: h.id or 0):
                if row.state == "sending" and row.locked_until and row.locked_until > now:
                    continue  # another worker has it
                if row.next_attempt_at > now:
                    continue  # backing off; later messages of the channel wait behind it
                last = last_claims.get(row.channel)
                if last is not None and now - last < interval:
                    continue
                ref = refs.get(row.update_of or row.thread_of or 0)
                if ref is not None and ref.state == "dead":
                    await self._bury(
                        session,
                        row,
                        now,
                        f"message {ref.id} it refers to was never delivered",
                        in_doubt=row.in_doubt,
                    )
                    continue
                if ref is not None and ref.state != "sent":
                    continue  # the message it edits or answers is not out yet
                # A lease that ran out means the worker holding it died, perhaps after Slack had the message.
                doubt = row.in_doubt or row.state == "sending"
                since = row.claimed_at or row.created_at
                until = now + self.lease(row.method)
                won = await session.exec(
                    update(OutboxMessage)
                    .where(
                        col(OutboxMessage.id) == row.id,
                        or_(col(OutboxMessage.state) == "pending", col(OutboxMessage.locked_until) <= now),
                        unsent,
                    )
                    .values(
                        state="sending",
                        locked_until=until,
                        claimed_at=now,
                        in_doubt=doubt,
                    )
                )
                if won.rowcount == 1:
                    claimed.append(Claim(row, refs, doubt, since, until))
        return claimed

    async def _deliver(self, claim: Claim) -> None:
        row, refs = claim.row, claim.refs
        args: dict[str, Any] = json.loads(row.payload)
        if row.update_of:
            args["ts"] = refs[row.update_of].slack_ts
        if row.thread_of:
            args["thread_ts"] = refs[row.thread_of].slack_ts
        posting = row.method == "chat.postMessage" and row.id is not None
        if posting:
            args["metadata"] = tag(args.get("metadata"), row.id or 0)
        # the call gives up well inside the lease, so no other worker takes the message while it is out
        bound = self.lease(row.method).total_seconds() * 0.8
        async with self._limit:
            if self.clock.now() + timedelta(seconds=bound) > claim.until:
                # waited too long for a free slot to finish inside the lease: give it back untried
                await self._release(claim)
                return
            try:
                if claim.in_doubt and posting and self.settings.check_history:
                    found = await asyncio.wait_for(self._find_posted(row, args, claim.since), timeout=bound)
                    if found is not None:
                        self.stats.recovered += 1
                        log.info(
                            "outbox %s was already in %s (ts %s): not sent again", row.id, row.channel, found
                        )
                        await self._sent(row, found)
                        return
                if row.method == UPLOAD_METHOD:
                    response = await asyncio.wait_for(self._upload(args), timeout=bound)
                else:
                    response = await asyncio.wait_for(
                        self.client.api_call(row.method, json=args), timeout=bound
                    )
            except SlackApiError as exc:
                status, error, headers = _describe(exc)
                # a 5xx may come after Slack posted the message; any other refusal means it did not
                doubt = claim.in_doubt or (status is not None and status >= 500)
                await self._failed(row, status, error, headers, in_doubt=doubt)
                return
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"network: {type(exc).__name__}: {exc}".rstrip(": ")
                # no connection was made, so Slack cannot have the message; any other cut may come after
                sent_nothing = isinstance(exc, aiohttp.ClientConnectorError)
                await self._failed(row, None, error, {}, in_doubt=claim.in_doubt or not sent_nothing)
                return
        await self._sent(row, response.get("ts") or row.slack_ts)

    async def _release(self, claim: Claim) -> None:
        async with unit_of_work(self.sessions) as session:
            await session.exec(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == claim.row.id,
                    col(OutboxMessage.state) == "sending",
                    col(OutboxMessage.locked_until) == claim.until,
                )
                .values(state="pending", locked_until=None)
            )

    async def _sent(self, row: OutboxMessage, ts: str | None) -> None:
        now = self.clock.now()
        async with unit_of_work(self.sessions) as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(
                    state="sent",
                    sent_at=now,
                    locked_until=None,
                    attempts=row.attempts + 1,
                    slack_ts=ts,
                    last_error=None,
                    in_doubt=False,
                )
            )
        self.stats.sent += 1
        if self.on_sent is not None:
            self.on_sent(max(0.0, (now - (row.due_at or row.created_at)).total_seconds()))

    async def _find_posted(self, row: OutboxMessage, args: dict[str, Any], since: datetime) -> str | None:
        """The ts of this message if an earlier attempt posted it, found by the outbox id in its metadata
        among the channel's (or thread's) messages since a minute before that attempt; None if it is not
        there, or if this app may not look (then it is sent again: at least once)."""
        channel = str(args["channel"])
        thread = args.get("thread_ts")
        oldest = f"{(since - timedelta(seconds=60)).timestamp():.6f}"
        try:
            if channel[:1] in ("U", "W"):  # a DM sent to a person's id: its conversation id first
                opened = await self.client.conversations_open(users=channel)
                channel = str((opened.get("channel") or {}).get("id") or channel)
            cursor = None
            for _ in range(HISTORY_PAGES):
                common: dict[str, Any] = {
                    "channel": channel,
                    "oldest": oldest,
                    "include_all_metadata": True,
                    "limit": 200,
                    "cursor": cursor,
                }
                page = await (
                    self.client.conversations_replies(ts=thread, **common)
                    if thread
                    else self.client.conversations_history(**common)
                )
                for message in page.get("messages") or []:
                    if tagged_id(message.get("metadata")) == row.id:
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            _, error, _ = _describe(exc)
            if error not in UNVERIFIABLE:
                raise
            self.stats.unverified += 1
            log.warning(
                "outbox %s may already be in %s but Slack will not let the bot look (%s): sending it again",
                row.id,
                row.channel,
                error,
            )
        return None

    async def _upload(self, args: dict[str, Any]) -> Any:
        """Files through slack_sdk's files_upload_v2: an upload URL per file, the bytes to it, then
        files.completeUploadExternal shares them. A failure at any step retries the whole upload; Slack
        shares a file only on completion, so a retry doubles nothing in the channel unless completion
        succeeded and its answer was lost (the at-least-once case every outbox message has)."""
        uploads = [
            {"filename": f["filename"], "title": f["title"], "content": base64.b64decode(f["content_b64"])}
            for f in args["file_uploads"]
        ]
        return await self.client.files_upload_v2(
            channel=args["channel"],
            thread_ts=args.get("thread_ts"),
            initial_comment=args.get("initial_comment"),
            file_uploads=uploads,
        )

    async def _failed(
        self, row: OutboxMessage, status: int | None, error: str, headers: dict[str, Any], *, in_doubt: bool
    ) -> None:
        now = self.clock.now()
        self.stats.by_error[error] += 1
        async with unit_of_work(self.sessions) as session:
            if status == 429 or error == "ratelimited":
                wait = _retry_after(headers)
                await self._pause(session, now + timedelta(seconds=wait))
                self.stats.rate_limited += 1
                log.warning("Slack rate-limited %s; pausing sends for %ss", row.method, wait)
                await self._reschedule(
                    session,
                    row,
                    now + timedelta(seconds=wait),
                    f"429 rate limited ({wait}s)",
                    in_doubt=in_doubt,
                )
                return
            permanent = status is not None and status < 500 and error not in RETRYABLE
            attempts = row.attempts + 1
            if permanent or attempts >= self.settings.max_attempts:
                why = f"{error} (permanent)" if permanent else f"{error} after {attempts} attempts"
                await self._bury(session, row, now, why, attempts=attempts, in_doubt=in_doubt)
                return
            backoff = self.settings.backoff_seconds * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
            backoff = min(self.settings.backoff_cap_seconds, backoff)  # jitter first, so the cap holds
            self.stats.retried += 1
            log.info(
                "outbox %s %s failed (%s); retry %d in %.0fs", row.id, row.method, error, attempts, backoff
            )
            await self._reschedule(
                session,
                row,
                now + timedelta(seconds=backoff),
                f"{status or '-'} {error}",
                attempts=attempts,
                in_doubt=in_doubt,
            )

    async def _paused_until(self) -> datetime | None:
        """A 429 pauses every worker on the database until Slack's Retry-After has passed."""
        async with unit_of_work(self.sessions) as session:
            row = await session.get(Counter, PAUSE_KEY)
        return None if row is None or not row.value else datetime.fromtimestamp(row.value, UTC)

    async def _pause(self, session: AsyncSession, until: datetime) -> None:
        await insert_ignore(session, Counter, {"name": PAUSE_KEY, "value": 0})
        stamp = math.ceil(until.timestamp())
        await session.exec(
            update(Counter)
            .where(col(Counter.name) == PAUSE_KEY, col(Counter.value) < stamp)
            .values(value=stamp)
        )

    async def _reschedule(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        when: datetime,
        error: str,
        *,
        attempts: int | None = None,
        in_doubt: bool = False,
    ) -> None:
        await _set(
            session,
            row,
            state="pending",
            next_attempt_at=when,
            last_error=error,
            attempts=attempts,
            in_doubt=in_doubt,
        )

    async def _bury(
        self,
        session: AsyncSession,
        row: OutboxMessage,
        now: datetime,
        why: str,
        *,
        attempts: int | None = None,
        in_doubt: bool = False,
    ) -> None:
        # in doubt stays marked: a dead message retried by hand is looked for before it is sent
        await _set(session, row, state="dead", last_error=why, attempts=attempts, in_doubt=in_doubt)
        self.stats.dead += 1
        todo = advice(row.channel, why)
        log.error(
            "outbox %s to %s dead-lettered: %s%s", row.id, row.channel, why, f"; {todo}" if todo else ""
        )

    async def run_forever(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """The production loop: deliver, then sleep until the next message is due (at most `idle` s)."""
        log.info("outbox worker %s started", self.name)
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:  # the loop must outlive a database blip; the error is logged with its trace
                log.exception("outbox round failed; retrying shortly")
                sent = 0
            if sent:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=await self._sleep_for(idle))
            except TimeoutError:
                pass

    async def _sleep_for(self, idle: float) -> float:
        try:
            due = await self.next_due()
        except Exception:  # same as above: keep the loop alive, try again after `idle`
            return idle
        wait = idle if due is None else (due - self.clock.now()).total_seconds()
        paused_until = await self._paused_until()
        if paused_until is not None:
            wait = max(wait, (paused_until - self.clock.now()).total_seconds())
        return min(max(wait, 0.05), idle)


async def _set(session: AsyncSession, row: OutboxMessage, *, attempts: int | None, **values: Any) -> None:
    """Release a message's lease and record how its attempt ended."""
    values["attempts"] = row.attempts if attempts is None else attempts
    await session.exec(
        update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(locked_until=None, **values)
    )


def _describe(exc: SlackApiError) -> tuple[int | None, str, dict[str, Any]]:
    """Status, error code and headers of a failed call, whatever shape of response slack_sdk kept."""
    response = exc.response
    status = getattr(response, "status_code", None)
    try:
        error = response.get("error") or "error"
    except (AttributeError, TypeError, ValueError):
        error = f"unreadable answer ({status or 'no status'})"
    headers = getattr(response, "headers", None) or {}
    return (status if isinstance(status, int) else None), error, dict(headers)


def _retry_after(headers: dict[str, Any]) -> int:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            values = value if isinstance(value, list) else [value]
            try:
                return max(1, int(values[0]))
            except (TypeError, ValueError):
                break
    return 1


def _utc(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def describe_row(row: OutboxMessage, now: datetime) -> str:
    """One message as `cadence outbox list` prints it: when it went, or when it may go, and what to do
    about one Slack refused."""
    if row.state == "sent" and row.sent_at is not None:
        when = f"sent={_utc(row.sent_at)}"
    elif row.state == "sending" and row.locked_until is not None:
        when = f"sending, lease until {_utc(row.locked_until)}"
    elif row.state == "pending":
        when = "due now" if row.next_attempt_at <= now else f"next={_utc(row.next_attempt_at)}"
    else:
        when = ""
    parts = [
        f"{row.id:>6} {row.state:<8} {row.method:<17} {row.channel:<12} attempts={row.attempts}",
        when,
        (row.last_error or "")[:80],
    ]
    todo = advice(row.channel, row.last_error) if row.state == "dead" else ""
    line = " ".join(p for p in parts if p)
    return f"{line} — {todo}" if todo else line


async def list_messages(
    session: AsyncSession, *, state: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    return list((await session.exec(stmt)).all())


async def retry_message(session: AsyncSession, message_id: int, now: datetime) -> OutboxMessage | None:
    row = await session.get(OutboxMessage, message_id)
    if row is None or row.state != "dead":
        return None
    row.state, row.attempts, row.next_attempt_at, row.locked_until = "pending", 0, now, None
    session.add(row)
    return row


async def purge_dead(session: AsyncSession) -> int:
    """Delete dead messages nothing living refers to: a pending edit or thread reply, or a ceremony run,
    keeps its message. Dead edits and replies go first, so their dead originals go in the same purge."""
    rows = list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id).desc()))).all())
    kept_by_run = set(
        (
            await session.exec(select(CeremonyRun.message_id).where(col(CeremonyRun.message_id).is_not(None)))
        ).all()
    )
    referrers: dict[int, set[int]] = {}
    for row in rows:
        for ref in (row.update_of, row.thread_of):
            if ref:
                referrers.setdefault(ref, set()).add(row.id or 0)
    removed: set[int] = set()
    for row in rows:  # newest first: dependents come before what they refer to
        if row.state != "dead" or row.id in kept_by_run or referrers.get(row.id or 0, set()) - removed:
            continue
        await session.delete(row)
        await session.flush()
        removed.add(row.id or 0)
    return len(removed)


async def prune_sent(session: AsyncSession, before: datetime) -> int:
    """Delete messages sent before `before` that nothing still needs: a ceremony run older than that lets
    go of its message first (its edits and thread replies happen the same day); a review's or a drift
    incident's request is kept while the review or incident exists (it may yet be edited), and so is a
    message a newer one edits or answers. Their dedupe keys are then free; nothing queues an old key
    again after that long."""
    old = and_(col(OutboxMessage.state) == "sent", col(OutboxMessage.sent_at) < before)
    await session.exec(
        update(CeremonyRun)
        .where(col(CeremonyRun.scheduled_for) < before, col(CeremonyRun.message_id).is_not(None))
        .values(message_id=None)
    )
    other = aliased(OutboxMessage)  # the table again, inside the DELETE: never correlated to its row
    still_live = not_(and_(col(other.state) == "sent", col(other.sent_at) < before))
    needed = [  # NOT IN with a NULL among the ids would match nothing, so each leaves NULLs out
        select(Review.message_id).where(col(Review.message_id).is_not(None)),
        select(DriftIncident.message_id).where(col(DriftIncident.message_id).is_not(None)),
        select(CeremonyRun.message_id).where(col(CeremonyRun.message_id).is_not(None)),
        select(other.update_of).where(col(other.update_of).is_not(None), still_live),
        select(other.thread_of).where(col(other.thread_of).is_not(None), still_live),
    ]
    stmt = delete(OutboxMessage).where(old, *(col(OutboxMessage.id).not_in(ids) for ids in needed))
    result = await session.exec(stmt)
    return int(result.rowcount or 0)


async def counts(session: AsyncSession) -> dict[str, int]:
    from sqlalchemy import func

    rows = await session.exec(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
    return {state: int(n) for state, n in rows.all()}


async def oldest_waiting(session: AsyncSession) -> datetime | None:
    """When the oldest message not yet sent (pending or being sent) was queued."""
    from sqlalchemy import func

    return (
        await session.exec(
            select(func.min(OutboxMessage.created_at)).where(
                col(OutboxMessage.state).in_(("pending", "sending"))
            )
        )
    ).one()
