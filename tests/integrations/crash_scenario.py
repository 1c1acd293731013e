"""A `cadence clock` killed with SIGKILL in the middle of a burst of deliveries, then started again:
how many messages reached Slack, and how many twice. Slack (the fake) posts each message at once but
answers only after a pause, so at the kill some messages are in Slack while their rows still say
"sending". Used by tests/integrations/test_crash_delivery.py and bench/crash_doubles.py."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from bot.jobs.outbox_worker import tagged_id
from bot.store.db import create_engine, session_factory, unit_of_work
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage
from bot.store.outbox import enqueue
from tests.fake_slack import FakeSlack
from tests.integrations.processes import Processes, cadence_env

CHANNELS = [f"C0CRASH{i:02d}" for i in range(6)]
PEOPLE = [f"U0CRASH{i:02d}" for i in range(1, 5)]  # DMs go to a person's id, as the bot sends them

CONFIG = """\
timezone: UTC
teams:
  - name: crash
    channel: C0CRASH00
    members: [U0CRASH01, U0CRASH02]
    ceremonies:
      standup: {{cron: "0 9 1 1 *"}}
outbox: {{lease_seconds: {lease}, per_channel_interval_seconds: 0, check_history: {check}}}
"""


@dataclass
class Outcome:
    queued: int
    delivered: int  # distinct messages Slack has
    doubles: int  # copies beyond the first
    in_doubt_at_kill: int  # rows still "sending" at the kill whose message Slack already had
    drained_seconds: float  # from the restart until every row was sent
    logs: str

    @property
    def lost(self) -> int:
        return self.queued - self.delivered


async def queue(url: str, n: int) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        targets = CHANNELS + PEOPLE
        async with unit_of_work(session_factory(engine)) as session:
            for i in range(n):
                await enqueue(
                    session,
                    dedupe_key=f"crash-{i}",
                    channel=targets[i % len(targets)],
                    payload={"text": f"message {i}"},
                )
    finally:
        await engine.dispose()


async def _states(url: str) -> dict[int, str]:
    engine = create_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            rows = await session.exec(select(OutboxMessage.id, OutboxMessage.state))
            return {int(i): str(s) for i, s in rows.all()}
    finally:
        await engine.dispose()


def _in_slack(fake: FakeSlack) -> Counter[int]:
    messages, _, _ = fake.snapshot()  # every message as plain data, taken under the stand-in's lock
    found = [tagged_id(m["metadata"]) for m in messages]
    return Counter(i for i in found if i is not None)


def run(
    url: str,
    work: Path,
    *,
    check_history: bool,
    messages: int = 60,
    kill_after: int = 15,
    answer_delay: float = 0.4,
    lease: float = 3.0,
) -> Outcome:
    fake = FakeSlack().start()
    fake.answer_late("chat.postMessage", answer_delay, times=10 * messages)
    config = work / "crash.yaml"
    config.write_text(CONFIG.format(lease=lease, check=str(check_history).lower()))
    env = cadence_env(url, fake.api_url, config)
    processes = Processes(env, work)
    try:
        asyncio.run(queue(url, messages))
        first = processes.start("clock-killed", "clock")
        deadline = time.monotonic() + 60
        while sum(_in_slack(fake).values()) < kill_after:
            if time.monotonic() > deadline or first.poll() is not None:
                raise AssertionError(f"the clock never delivered {kill_after} messages\n{processes.logs()}")
            time.sleep(0.01)
        processes.kill(first)
        states = asyncio.run(_states(url))
        had = _in_slack(fake)
        in_doubt = sum(1 for i, s in states.items() if s == "sending" and had[i])

        restarted = time.monotonic()
        processes.start("clock-restarted", "clock")
        deadline = restarted + 90
        while any(s != "sent" for s in asyncio.run(_states(url)).values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the outbox never drained after the restart\n{processes.logs()}")
            time.sleep(0.2)
        drained = time.monotonic() - restarted
        counted = _in_slack(fake)
        return Outcome(
            queued=messages,
            delivered=len(counted),
            doubles=sum(n - 1 for n in counted.values()),
            in_doubt_at_kill=in_doubt,
            drained_seconds=drained,
            logs=processes.logs(),
        )
    finally:
        processes.stop()
        fake.stop()
