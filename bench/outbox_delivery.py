"""Outbox delivery under Slack's rate limits and errors: 1,000 nudges across 50 channels.

    python bench/outbox_delivery.py [--messages 1000] [--channels 50] [--failures 0.2] [--interval 1]
                                    [--database-url postgresql://postgres@127.0.0.1:5432/benchoutbox]

The messages are queued in one transaction, as a nudge round queues them, and then one outbox worker
delivers them to the tests' Slack stand-in on a loopback port. In the second run the stand-in answers
--failures of the posts with an error, half of them 429 (with Retry-After: 1) and half 500. Both runs
are set against the ideal: with --interval seconds between two messages of one channel (Slack allows
about one a second), the busiest channel cannot finish before (its messages - 1) x interval. The
benchmark checks that every message arrives exactly once and none is dead-lettered.
"""

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_slack import Call, FakeSlack  # noqa: E402


class FlakySlack(FakeSlack):
    """Answers a share of chat.postMessage calls with 429 or 500, at random (seeded)."""

    def __init__(self, share: float, seed: int = 13) -> None:
        super().__init__()
        self.share = share
        self.rng = random.Random(seed)
        self.injected: Counter[int] = Counter()

    def answer(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method == "chat.postMessage" and self.rng.random() < self.share:
            status = 429 if self.rng.random() < 0.5 else 500
            self.injected[status] += 1
            with self._lock:
                self.calls.append(Call(method, args, headers | {"x-fake-failed": str(status)}))
            if status == 429:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            return 500, {"ok": False, "error": "internal_error"}, {}
        return super().answer(method, args, headers)


async def run(db: str, *, messages: int, channels: int, share: float, interval: float) -> dict[str, Any]:
    from sqlalchemy import text

    from bot.clock import SystemClock
    from bot.config import OutboxConfig
    from bot.jobs.outbox_worker import OutboxWorker, counts, delivery_client
    from bot.store import outbox
    from bot.store.db import create_engine, session_factory, unit_of_work
    from bot.store.migrate import upgrade

    engine = create_engine(db)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))
    fake = FlakySlack(share).start()
    try:
        names = [f"C{n:04d}NUDGE" for n in range(channels)]
        async with unit_of_work(sessions) as session:
            for i in range(messages):
                await outbox.enqueue(
                    session,
                    dedupe_key=f"bench:nudge:{i}",
                    channel=names[i % channels],
                    payload={"text": f"nudge {i}: S-{i} lacks its data contract"},
                )
        settings = OutboxConfig(
            per_channel_interval_seconds=interval, backoff_seconds=1, backoff_cap_seconds=8
        )
        worker = OutboxWorker(
            sessions, delivery_client("xoxb-bench", fake.api_url), clock=SystemClock(), settings=settings
        )
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(worker.run_forever(stop, idle=0.05))
        while True:
            await asyncio.sleep(0.05)
            async with unit_of_work(sessions) as session:
                states = await counts(session)
            if not states.get("pending") and not states.get("sending"):
                break
        elapsed = time.perf_counter() - began
        stop.set()
        await task
        delivered = [c.args["text"] for c in fake.delivered("chat.postMessage")]
        per_channel = math.ceil(messages / channels)
        return {
            "seconds": elapsed,
            "ideal": (per_channel - 1) * interval,
            "delivered": len(delivered),
            "unique": len(set(delivered)),
            "dead": states.get("dead", 0),
            "injected_429": fake.injected[429],
            "injected_500": fake.injected[500],
            "worker_429": worker.stats.rate_limited,
            "retried": worker.stats.retried,
        }
    finally:
        fake.stop()
        await engine.dispose()


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # the worker logs every 429 and 500; the table below counts them
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--failures", type=float, default=0.2, help="share of posts answered 429 or 500")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two posts to a channel")
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.database_url or f"sqlite:///{tmp}/outbox.db"
        print(
            f"{args.messages} messages across {args.channels} channels, {args.interval:g} s apart per channel"
        )
        print(
            f"{'run':<26} {'seconds':>8} {'ideal':>6} {'x ideal':>8} {'delivered':>9} {'unique':>7} {'dead':>5} {'429s':>5} {'500s':>5} {'retried':>8}"
        )
        for name, share in (("no errors", 0.0), (f"{args.failures:.0%} answered 429/500", args.failures)):
            r = asyncio.run(
                run(db, messages=args.messages, channels=args.channels, share=share, interval=args.interval)
            )
            print(
                f"{name:<26} {r['seconds']:>8.1f} {r['ideal']:>6.0f} {r['seconds'] / max(r['ideal'], 1e-9):>7.2f}x "
                f"{r['delivered']:>9} {r['unique']:>7} {r['dead']:>5} {r['injected_429']:>5} {r['injected_500']:>5} {r['retried']:>8}"
            )
            assert r["delivered"] == r["unique"] == args.messages and r["dead"] == 0, r
        print(f"\nrerun: python bench/outbox_delivery.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
