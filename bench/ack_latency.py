"""Ack latency of signed slash commands: Cadence against a bare Bolt app, side by side in one run.

    python bench/ack_latency.py [--requests 600] [--rate 300] [--stories 200]

Each server runs in its own process under uvicorn on a loopback port; this process sends signed
requests at a fixed rate and prints p50/p90/p99/max of the time to the HTTP answer. The baseline is
a Bolt AsyncApp with process_before_response=True that acks a command with a fixed text: the floor
any Bolt listener on this machine can reach. Cadence answers `story list` (a database read of the
team's open stories with their readiness) and `help`.
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_slack import FakeSlack  # noqa: E402
from tests.slack_driver import SECRET, signed_headers  # noqa: E402

CONFIG = "teams: [{name: recsys, channel: C0123RECSYS, members: [U01ALICE]}]\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(kind: str, port: int, db: str, api: str) -> None:
    """Runs in the child process."""
    import logging

    import uvicorn
    from fastapi import FastAPI, Request
    from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    logging.disable(logging.WARNING)
    if kind == "baseline":
        bolt = AsyncApp(
            client=AsyncWebClient(token="xoxb-bench", base_url=api),
            signing_secret=SECRET,
            process_before_response=True,
        )

        @bolt.command("/scrum")
        async def answer(ack):  # type: ignore[no-untyped-def]
            await ack(text="ok")

        handler = AsyncSlackRequestHandler(bolt)
        app = FastAPI()

        @app.post("/slack/events")
        async def events(request: Request):  # type: ignore[no-untyped-def]
            return await handler.handle(request)
    else:
        from bot.config import Settings, parse_config
        from bot.slack.app import web_client
        from bot.store.db import create_engine
        from bot.web import create_web_app

        settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=api)
        app = create_web_app(
            settings=settings,
            config=parse_config(CONFIG),
            engine=create_engine(db),
            client=web_client(settings),
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def seed(db: str, stories: int) -> None:
    from bot.config import parse_config
    from bot.services import readiness
    from bot.services.stories import add_story
    from bot.store.db import create_engine, session_factory, unit_of_work
    from bot.store.migrate import upgrade

    engine = create_engine(db)
    await upgrade(engine)
    config = parse_config(CONFIG)
    async with unit_of_work(session_factory(engine)) as session:
        for i in range(stories):
            story = await add_story(
                session,
                config=config,
                team=config.teams[0],
                title=f"Story {i}",
                actor="U01ALICE",
                owner="U01ALICE",
            )
            if i % 2:
                await readiness.record_answers(
                    session,
                    story=story,
                    kind="ready",
                    config=config,
                    actor="U01ALICE",
                    answers={"data_available": "s3://bucket/v1", "eval_criteria": "AUC > 0.8"},
                )
    await engine.dispose()


def body(text: str) -> str:
    return urlencode(
        {
            "command": "/scrum",
            "text": text,
            "user_id": "U01ALICE",
            "channel_id": "C0123RECSYS",
            "team_id": "T0001",
            "response_url": "http://127.0.0.1:9/r",
            "trigger_id": "t.1",
        }
    )


async def measure(port: int, text: str, requests: int, rate: float) -> list[float]:
    payload = body(text)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as client:
        for _ in range(20):  # warm up (the first request also runs Bolt's auth.test)
            await client.post("/slack/events", content=payload, headers=signed_headers(payload))

        async def one() -> None:
            start = time.perf_counter()
            response = await client.post("/slack/events", content=payload, headers=signed_headers(payload))
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text

        tasks = []
        began = time.perf_counter()
        for i in range(requests):  # open loop: send on schedule whether or not earlier answers came back
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies


def wait_ready(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def row(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return f"{name:<28} {q[49]:>7.2f} {q[89]:>7.2f} {q[98]:>7.2f} {max(values):>7.2f}  (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--stories", type=int, default=200, help="open stories in the team")
    parser.add_argument("--serve", choices=("baseline", "cadence"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.api)
        return

    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        asyncio.run(seed(db, args.stories))
        procs, ports = [], {}
        for kind in ("baseline", "cadence"):
            ports[kind] = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--serve",
                        kind,
                        "--port",
                        str(ports[kind]),
                        "--db",
                        db,
                        "--api",
                        fake.api_url,
                    ],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
            )
        try:
            for port in ports.values():
                wait_ready(port)
            print(
                f"{args.requests} signed slash commands at {args.rate:.0f}/s, {args.stories} open stories (ms)"
            )
            print(f"{'':<28} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
            cases = [
                ("baseline", "anything", "bare Bolt ack (baseline)"),
                ("cadence", "help", "cadence help"),
                ("cadence", "story list", "cadence story list"),
                ("cadence", "story list --not-ready", "cadence story list --not-ready"),
            ]
            for kind, text, name in cases:
                print(row(name, asyncio.run(measure(ports[kind], text, args.requests, args.rate))))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            fake.stop()


if __name__ == "__main__":
    main()
