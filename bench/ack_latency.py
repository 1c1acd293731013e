"""Ack latency of signed slash commands: Cadence against two bare Bolt apps, side by side in one run.

    python bench/ack_latency.py                                   # one team, 200 open stories
    python bench/ack_latency.py --scale --rate 50                 # 100,000 stories, 300 teams
    python bench/ack_latency.py --database-url postgresql://postgres@127.0.0.1:5432/benchack

Each server runs in its own process under uvicorn on a loopback port, one core's worth of Python each,
and this process sends requests signed as Slack signs them. Two baselines bracket what a Bolt bot can
do here: a Bolt AsyncApp with default settings that acks with a fixed text (what a typical Bolt bot
gets: the listener runs after the ack, in a task), and the same with process_before_response=True (the
floor: every Cadence answer is computed before the ack, as this is). For each command it prints the
open-loop latency at --rate (p50/p90/p99/max, and p99 against the floor's) and the saturation: the
answers per second with --concurrency requests always in flight, against the floor's. Every case runs
once per round (--rounds, 3 by default), so a slow stretch of a shared machine hits all of them:
latencies are pooled over the rounds, and the saturation shown is the median of the rounds, each share
taken against the floor of the same round. On Linux it also prints the server process's CPU time per
answer during saturation (median of the rounds), the CPU this process (the client, one thread of
httpx) spent per answer, and on PostgreSQL the CPU of every postgres process on the machine per answer
(meaningful when the database runs here, as in CI). The client, the servers and the database share the
machine's cores, and the client is one thread: where answers/s is 1000 / the client's ms per answer,
the client set the saturation (docs/benchmarks.md, fifth round).

Cadence runs twice. The first server keeps its answers (answer_cache_entries, 256 by default): the
benchmark asks each command again and again with nothing changed, so after the first every list and
plan is an answer kept at the team's revision, after reading that one row. The second renders every
answer afresh (answer_cache_entries: 0), which is what the first answer after a change costs.

A third baseline shows what the database alone costs: the floor app answering each reading command
after running the very statements Cadence's reader sent for it (recorded from Cadence at start-up, SQL
and parameters as the driver got them) on the bare driver, and acking with one line per row. The gap
between it and Cadence is Cadence's own work (SQLAlchemy, readiness, Block Kit); the gap between it and
the floor is what reading those rows costs on the shared cores, whatever the server.

The data is written straight into the tables, as years of use would leave them. The default is one team
with --stories open stories, half of them with some readiness answers. --scale makes 100,000 stories
across 300 teams: the largest team has 2,000 open stories (and the measured commands run in it), every
team has a current sprint with 20 stories in it, and the rest of the history is done or archived.
"""

import argparse
import asyncio
import gc
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.services.readiness import stored_keys  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.slack_driver import SECRET, signed_headers  # noqa: E402

TEAM_CHANNEL = "C0TEAM0000"
USER = "U0000LEAD"
COMMANDS = ("help", "story list", "story list --not-ready", "sprint plan")
ML_KEYS = ("data_available", "feature_stability", "reproducible_env", "eval_criteria", "data_contract")
# (server, command text, name) for every case a run measures, in the order printed; the first is
# bare Bolt with default settings, the second the floor, then Cadence's commands (each asked again and
# again with nothing changed, so after the first an answer kept at the team's revision), the same
# rendered afresh every time (answer_cache_entries: 0, as after a change), and the reads alone.
CASES = [
    ("bolt-default", "anything", "bare Bolt, default settings"),
    ("bolt-floor", "anything", "bare Bolt, process_before_response (floor)"),
    *(("cadence", text, f"cadence {text}") for text in COMMANDS),
    *(("cadence-fresh", text, f"cadence, rendered afresh: {text}") for text in COMMANDS[1:]),
    *(("bolt-reads", text, f"floor + reads only: {text}") for text in COMMANDS[1:]),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(teams: int) -> str:
    lines = ["timezone: Europe/Berlin", "command: /scrum", "teams:"]
    for t in range(teams):
        channel = TEAM_CHANNEL if t == 0 else f"C0TEAM{t:04d}"
        lead = USER if t == 0 else f"U{t:04d}LEAD"
        lines.append(
            f"  - {{name: team{t:03d}, channel: {channel}, members: [{lead}, U{t:04d}DEV], leads: [{lead}]}}"
        )
    return "\n".join(lines) + "\n"


def serve(kind: str, port: int, db: str, api: str, config_file: str) -> None:
    """Runs in the child process."""
    import logging

    import uvicorn

    logging.disable(logging.WARNING)
    uvicorn.run(
        build_app(kind, db, api, config_file),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def build_app(kind: str, db: str, api: str, config_file: str) -> Any:
    """The ASGI app of one server: "cadence", or a bare Bolt app ("bolt-default", "bolt-floor", and
    "bolt-reads", the floor replaying Cadence's statements). bench/instructions.py counts the same apps."""
    from fastapi import FastAPI, Request
    from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    if kind.startswith("bolt"):
        bolt = AsyncApp(
            client=AsyncWebClient(token="xoxb-bench", base_url=api),
            signing_secret=SECRET,
            process_before_response=kind != "bolt-default",
        )
        if kind == "bolt-reads":
            replay = statement_replay(db, cadence_statements(db, api, config_file))

            @bolt.command("/scrum")
            async def answer_from_rows(ack, command):  # type: ignore[no-untyped-def]
                rows = await replay(command["text"])
                await ack(text="\n".join(" ".join(str(v) for v in row[1:5]) for row in rows) or "none")
        else:

            @bolt.command("/scrum")
            async def answer(ack):  # type: ignore[no-untyped-def]
                await ack(text="ok")

        handler = AsyncSlackRequestHandler(bolt)
        app = FastAPI()

        @app.post("/slack/events")
        async def events(request: Request):  # type: ignore[no-untyped-def]
            return await handler.handle(request)

        return app
    from bot.config import Settings
    from bot.slack.app import web_client
    from bot.store.db import create_engine
    from bot.web import create_web_app

    settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=api)
    return create_web_app(
        settings=settings,
        config=cadence_config(config_file, keep_answers=kind == "cadence"),
        engine=create_engine(db),
        client=web_client(settings),
        freeze_heap=True,  # as `cadence serve` does
    )


def cadence_config(config_file: str, *, keep_answers: bool) -> Any:
    """The benchmark's configuration; without `keep_answers`, every list and plan is rendered afresh."""
    from bot.config import load_config

    config = load_config(config_file)
    return config if keep_answers else config.model_copy(update={"answer_cache_entries": 0})


def cadence_statements(db: str, api: str, config_file: str) -> dict[str, list[tuple[str, Any]]]:
    """The SQL and parameters Cadence's reader sends for each reading command, as the driver received
    them: each command is answered twice in-process (signed, through the whole app, rendered afresh each
    time) and the second answer's statements are kept."""
    from sqlalchemy import event

    from bot.config import Settings
    from bot.slack.app import web_client
    from bot.store import db as store
    from bot.web import create_web_app

    sent: dict[str, list[tuple[str, Any]]] = {}
    recording: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if recording:
            sent[recording[0]].append((sql, params))

    settings = Settings(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=api)
    app = create_web_app(
        settings=settings,
        config=cadence_config(config_file, keep_answers=False),
        engine=store.create_engine(db),
        client=web_client(settings),
    )
    reads = app.state.deps.reads  # the readers Cadence's reading commands go through
    for reader in (reads._inline, reads._direct.sync_engine if reads._direct else None):
        if reader is not None:
            event.listen(reader, "before_cursor_execute", record)

    async def answer_each() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://x") as client,
        ):
            for text in COMMANDS[1:]:
                await post(client, body(text))
                sent[text] = []
                recording.append(text)
                await post(client, body(text))
                recording.clear()

    asyncio.run(answer_each())
    return sent


def on_postgres(db: Any) -> bool:
    """Whether a database URL the benchmark was given (text or a parsed URL) is PostgreSQL's (Cadence runs
    on it or SQLite)."""
    from sqlalchemy.engine import make_url

    return make_url(db).get_backend_name() != "sqlite"


def statement_replay(
    db: str, statements: dict[str, list[tuple[str, Any]]]
) -> Callable[[str], Awaitable[list]]:
    """Runs a command's statements (see cadence_statements) on the bare driver: asyncpg with a pool of
    its own on PostgreSQL, one sqlite3 connection on the event loop's thread on SQLite (as Cadence's
    reader). What a server that read the same rows and did nothing else would spend."""
    from sqlalchemy.engine import make_url

    url = make_url(db)  # any URL Cadence takes: postgres://, postgresql+asyncpg://, sqlite+aiosqlite:///…
    if on_postgres(url):
        import asyncpg  # type: ignore[import-untyped]

        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)  # as asyncpg takes it

        pools: list[asyncpg.Pool] = []

        async def keep(_conn: Any) -> None:
            """No reset when a connection goes back to the pool: asyncpg's default costs a round trip
            (RESET ALL and more), which Cadence's reader pool (autocommit, read-only) does not make."""

        async def from_postgres(text: str) -> list:
            if not pools:
                pools.append(await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=keep))
            rows: list = []
            async with pools[0].acquire() as conn:
                for sql, params in statements[text]:
                    rows += await conn.fetch(sql, *params)
            return rows

        return from_postgres
    import sqlite3

    conn = sqlite3.connect(str(url.database), check_same_thread=False)

    async def from_sqlite(text: str) -> list:
        rows: list = []
        for sql, params in statements[text]:  # BEGIN first, as Cadence's reader sends it
            rows += conn.execute(sql, params).fetchall()
        conn.commit()
        return rows

    return from_sqlite


async def seed(db: str, *, teams: int, open_in_first: int, total: int) -> None:
    """Stories, answers and sprints written in bulk; numbers, keys and states as the services make them."""
    from sqlalchemy import insert, text

    from bot.config import parse_config
    from bot.services.readiness import summary
    from bot.store.db import create_engine, session_factory, unit_of_work
    from bot.store.migrate import upgrade
    from bot.store.models import CriterionValue, Sprint, Story

    config = parse_config(config_text(teams))
    lacking = {  # ready_lacking for an ml story with the first n criteria answered, as add_story sets it
        n: not summary(Story(type="ml", ready_keys=stored_keys(ML_KEYS[:n])), "ready", config).complete
        for n in range(len(ML_KEYS) + 1)
    }
    rng = random.Random(13)
    engine = create_engine(db)
    await upgrade(engine)
    now = datetime.now(UTC)
    today = now.date()
    monday = today - timedelta(days=today.weekday())
    async with unit_of_work(session_factory(engine)) as session:
        sprints = [
            {
                "team": f"team{t:03d}",
                "name": "Sprint 1",
                "starts_on": monday,
                "ends_on": monday + timedelta(days=11),
                "state": "active",
                "created_by": USER,
                "created_at": now,
            }
            for t in range(teams)
        ]
        await session.exec(insert(Sprint), params=sprints)  # type: ignore[call-overload]
    async with unit_of_work(session_factory(engine)) as session:
        from sqlmodel import select

        sprint_ids = dict((await session.exec(select(Sprint.team, Sprint.id))).all())
    per_other = max((total - open_in_first * 2) // max(teams - 1, 1), 1) if teams > 1 else 0
    number = 0
    batch: list[dict] = []
    answers: list[tuple[int, int]] = []  # (story number, how many criteria answered)
    for t in range(teams):
        name = f"team{t:03d}"
        count = open_in_first * 2 if t == 0 else per_other
        opened = open_in_first if t == 0 else max(count // 5, 1)
        for i in range(count):
            number += 1
            status = "open" if i < opened else rng.choice(("done", "done", "done", "archived"))
            answered = rng.randint(1, len(ML_KEYS)) if status == "open" and i % 2 else 0
            batch.append(
                {
                    "number": number,
                    "team": name,
                    "type": "ml",
                    "title": f"Story {number} of {name}: retrain the ranker on fresh clicks",
                    "owner": USER if t == 0 else f"U{t:04d}DEV",
                    "points": rng.choice((1, 2, 3, 5, 8, None)),
                    "sprint_id": sprint_ids[name] if i < 20 else None,
                    "status": status,
                    "created_by": USER,
                    "created_at": now - timedelta(days=rng.randint(0, 1500)),
                    "updated_at": now,
                    "done_at": now if status == "done" else None,
                    "ready_keys": stored_keys(ML_KEYS[:answered]),  # as record_answers keeps it
                    "ready_lacking": lacking[answered],
                }
            )
            if answered:
                answers.append((number, answered))
    async with unit_of_work(session_factory(engine)) as session:
        for start in range(0, len(batch), 5000):
            await session.exec(insert(Story), params=batch[start : start + 5000])  # type: ignore[call-overload]
    async with unit_of_work(session_factory(engine)) as session:
        from sqlmodel import select

        ids = dict((await session.exec(select(Story.number, Story.id))).all())
        values = [
            {
                "story_id": ids[n],
                "kind": "ready",
                "key": key,
                "value": "s3://lake/clicks/v3",
                "set_by": USER,
                "set_at": now,
            }
            for n, k in answers
            for key in ML_KEYS[:k]
        ]
        for start in range(0, len(values), 5000):
            await session.exec(insert(CriterionValue), params=values[start : start + 5000])  # type: ignore[call-overload]
    async with engine.connect() as conn:  # statistics, as a database in use for years has them
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await engine.dispose()
    print(
        f"seeded {number:,} stories in {teams} teams ({open_in_first:,} open in team000), {len(values):,} answers"
    )


def body(text: str) -> str:
    return urlencode(
        {
            "command": "/scrum",
            "text": text,
            "user_id": USER,
            "channel_id": TEAM_CHANNEL,
            "team_id": "T0001",
            "response_url": "http://127.0.0.1:9/r",
            "trigger_id": "t.1",
        }
    )


async def post(client: httpx.AsyncClient, payload: str) -> float:
    start = time.perf_counter()
    response = await client.post("/slack/events", content=payload, headers=signed_headers(payload))
    assert response.status_code == 200, response.text
    return (time.perf_counter() - start) * 1000


def client_for(port: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits)


async def latency(port: int, text: str, requests: int, rate: float) -> list[float]:
    """Open loop: requests leave on schedule whether or not earlier answers came back."""
    payload = body(text)
    async with client_for(port) as client:
        for _ in range(20):  # warm up (the first request also runs Bolt's auth.test)
            await post(client, payload)
        tasks = []
        began = time.perf_counter()
        for i in range(requests):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(client, payload)))
        return list(await asyncio.gather(*tasks))


async def saturation(port: int, text: str, concurrency: int, seconds: float) -> float:
    """Closed loop: `concurrency` requests always in flight; answers per second."""
    payload = body(text)
    done = 0
    async with client_for(port) as client:
        await post(client, payload)
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await post(client, payload)
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - began)


def _stat_cpu(stat: Path) -> tuple[str, float]:
    """A process's name and the CPU time (user and system) it has used so far, from its /proc stat."""
    head, _, rest = stat.read_text().rpartition(")")
    fields = rest.split()
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system) a process has used so far, from Linux's /proc; None elsewhere."""
    try:
        return _stat_cpu(Path(f"/proc/{pid}/stat"))[1]
    except OSError:
        return None


def database_cpu_seconds() -> float | None:
    """CPU time used so far by every PostgreSQL process on this machine (its backends and workers), from
    /proc; None where there is no /proc. What a local database spends on the answers."""
    total = 0.0
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            name, used = _stat_cpu(entry / "stat")
        except OSError:
            continue  # gone since the listing
        total += used if name == "postgres" else 0.0
    return total


def wait_ready(port: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second (open loop)")
    parser.add_argument("--stories", type=int, default=200, help="open stories in the team (without --scale)")
    parser.add_argument("--scale", action="store_true", help="100,000 stories in 300 teams")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight for saturation")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each saturation run lasts")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds over every case: latencies pooled, saturation the median",
    )
    parser.add_argument("--database-url", help="an empty database to seed (default: a temporary SQLite file)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.api, args.config)
        return

    teams, open_in_first, total = (300, 2000, 100_000) if args.scale else (1, args.stories, args.stories * 2)
    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(config_text(teams))
        db = args.database_url or f"sqlite:///{tmp}/bench.db"
        postgres = on_postgres(db)
        began = time.perf_counter()
        asyncio.run(seed(db, teams=teams, open_in_first=open_in_first, total=total))
        print(f"(seeding took {time.perf_counter() - began:.1f} s)")
        procs: dict[str, subprocess.Popen] = {}
        ports: dict[str, int] = {}
        for kind in ("bolt-default", "bolt-floor", "bolt-reads", "cadence", "cadence-fresh"):
            ports[kind] = free_port()
            command = [sys.executable, __file__, "--serve", kind, "--port", str(ports[kind]), "--db", db]
            command += ["--api", fake.api_url, "--config", str(config_file)]
            procs[kind] = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            for port in ports.values():
                wait_ready(port)
            print(
                f"\n{args.requests} signed commands at {args.rate:.0f}/s (open loop), then {args.concurrency} in flight "
                f"for {args.seconds:.0f} s, in {args.rounds} rounds; {total:,} stories, {open_in_first:,} open in the "
                "team asked (ms; answers/s and its share of the floor's are medians of the rounds)"
            )
            print(
                f"{'':<50} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} {'p99/floor':>9} {'answers/s':>10} {'of floor':>8}"
                f" {'CPU/answer':>10} {'client':>7}" + (f" {'database':>8}" if postgres else "")
            )
            # This process's own garbage collector paused the client for up to 100 ms now and then, which
            # showed as a server's p99: the seeding's objects are frozen and collection is off while
            # measuring (the client allocates little).
            gc.collect()
            gc.freeze()
            gc.disable()
            latencies: dict[str, list[float]] = {name: [] for _, _, name in CASES}
            shares: dict[str, list[float]] = {name: [] for _, _, name in CASES}
            rates: dict[str, list[float]] = {name: [] for _, _, name in CASES}
            cpu: dict[str, list[float]] = {name: [] for _, _, name in CASES}  # server's CPU ms per answer
            client_cpu: dict[str, list[float]] = {name: [] for _, _, name in CASES}  # this process's
            database_cpu: dict[str, list[float]] = {name: [] for _, _, name in CASES}
            for _ in range(args.rounds):  # every case once a round: a slow minute of the machine hits all
                floor_rate = 0.0
                for kind, text, name in CASES:
                    latencies[name] += asyncio.run(latency(ports[kind], text, args.requests, args.rate))
                    asyncio.run(
                        saturation(ports[kind], text, args.concurrency, 1.0)
                    )  # the first second runs slow
                    used, client_used = cpu_seconds(procs[kind].pid), time.thread_time()
                    database_used = database_cpu_seconds() if postgres else None
                    began_at = time.perf_counter()
                    rate = asyncio.run(saturation(ports[kind], text, args.concurrency, args.seconds))
                    after, client_after = cpu_seconds(procs[kind].pid), time.thread_time()
                    database_after = database_cpu_seconds() if postgres else None
                    answers = rate * (time.perf_counter() - began_at)
                    if used is not None and after is not None and answers:
                        cpu[name].append((after - used) * 1000 / answers)
                        client_cpu[name].append((client_after - client_used) * 1000 / answers)
                    if database_used is not None and database_after is not None and answers:
                        database_cpu[name].append((database_after - database_used) * 1000 / answers)
                    floor_rate = rate if kind == "bolt-floor" else floor_rate
                    rates[name].append(rate)
                    shares[name].append(rate / floor_rate if floor_rate else 0.0)
            gc.enable()
            floor_p99 = None
            for kind, _, name in CASES:
                q = statistics.quantiles(latencies[name], n=100)
                floor_p99 = q[98] if kind == "bolt-floor" else floor_p99
                measured = kind in ("cadence", "cadence-fresh", "bolt-reads")
                vs = f"{q[98] / floor_p99:>8.2f}x" if floor_p99 and measured else f"{'':>9}"
                share = f"{statistics.median(shares[name]):>7.0%}" if measured else f"{'':>8}"
                used = f"{statistics.median(cpu[name]):>8.2f}ms" if cpu[name] else f"{'':>10}"
                used += f" {statistics.median(client_cpu[name]):>5.2f}ms" if client_cpu[name] else ""
                used += f" {statistics.median(database_cpu[name]):>6.2f}ms" if database_cpu[name] else ""
                print(
                    f"{name:<50} {q[49]:>7.2f} {q[89]:>7.2f} {q[98]:>7.2f} {max(latencies[name]):>8.2f} {vs} "
                    f"{statistics.median(rates[name]):>10.0f} {share} {used}"
                )
            print(f"\nrerun: python bench/ack_latency.py {' '.join(sys.argv[1:])}")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)
            fake.stop()


if __name__ == "__main__":
    main()
