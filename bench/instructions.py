"""Instructions per answer: Cadence's commands against the bare Bolt apps, counted, not timed.

    python bench/instructions.py                                  # one team, 200 open stories
    python bench/instructions.py --database-url postgresql://postgres@127.0.0.1:5432/benchack

Latency on a shared two-core machine moves by half between runs of the same code (docs/benchmarks.md),
which hides a change of a few percent. This counts instead: each server of bench/ack_latency.py (the
same apps, built by its build_app) answers signed slash commands in one process under valgrind's
cachegrind, through the whole ASGI app (FastAPI, Slack's door, Bolt, the command), and the instructions
executed per answer are the difference between a run with --requests answers and one without, over
--requests. Both runs start, migrate nothing, and answer the same warm-up requests first, so start-up
and first-request costs cancel out; the same code counts the same to within a fraction of a percent
whatever else the machine does. The client (httpx's ASGI transport, in the same process) costs the same
for every case and is counted in each, the database server's work on PostgreSQL is not (it runs in its
own processes), and neither is the fake Slack API (it runs in this process, outside valgrind).

Needs valgrind (Debian: apt-get install valgrind). One count takes 10 to 30 seconds; a run does two per
case.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ack_latency import CASES, COMMANDS, body, build_app, config_text, seed  # noqa: E402

from tests.fake_slack import FakeSlack  # noqa: E402
from tests.slack_driver import signed_headers  # noqa: E402

WARM_UP = 30  # requests answered before counting starts (the first runs Bolt's auth.test, fills caches)
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def answer(kind: str, text: str, requests: int, db: str, api: str, config_file: str) -> None:
    """Runs under valgrind: builds one server's app and answers WARM_UP + `requests` signed commands."""
    import asyncio
    import logging

    import httpx

    logging.disable(logging.WARNING)
    app = build_app(kind, db, api, config_file)
    payload = body(text)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            for _ in range(WARM_UP + requests):
                response = await client.post(
                    "/slack/events", content=payload, headers=signed_headers(payload)
                )
                assert response.status_code == 200, response.text
            await asyncio.sleep(0.05)  # bare Bolt's default app runs its listener in a task after the ack

    asyncio.run(run())


def instructions(case: list[str], requests: int) -> int:
    """Instructions valgrind counted for one run of `answer`."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--answer", *case, str(requests)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}  # same dict orders every run
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    found = REFS.search(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"counting {case[:2]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="answers counted per case")
    parser.add_argument("--stories", type=int, default=200, help="open stories in the team")
    parser.add_argument("--database-url", help="an empty database to seed (default: a temporary SQLite file)")
    parser.add_argument("--answer", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.answer:
        kind, text, db, api, config_file, requests = args.answer
        answer(kind, text, int(requests), db, api, config_file)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")

    import asyncio

    fake = FakeSlack().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config_file = Path(tmp) / "config.yaml"
            config_file.write_text(config_text(1))
            db = args.database_url or f"sqlite:///{tmp}/bench.db"
            asyncio.run(seed(db, teams=1, open_in_first=args.stories, total=args.stories * 2))
            print(
                f"\ninstructions per answer (cachegrind), {args.requests} answers a case after {WARM_UP} to warm "
                f"up; {args.stories:,} open stories in the team asked, {args.stories * 2:,} in all"
            )
            print(f"{'':<48} {'per answer':>12} {'x floor':>8}")
            counted: dict[tuple[str, str], float] = {}
            began = time.perf_counter()
            for kind, text, name in CASES:
                case = [kind, text, db, fake.api_url, str(config_file)]
                per = (instructions(case, args.requests) - instructions(case, 0)) / args.requests
                counted[(kind, text)] = per
                floor = counted.get(("bolt-floor", "anything"))
                vs = f"{per / floor:>7.2f}x" if floor and kind != "bolt-default" else f"{'':>8}"
                print(f"{name:<48} {per / 1e6:>11.2f}M {vs}", flush=True)
            for text in COMMANDS[1:]:  # Cadence's own work beside what reading its rows costs
                own = counted[("cadence-fresh", text)] - counted[("bolt-reads", text)]
                print(f"{text + ': rendered afresh less reads only':<48} {own / 1e6:>11.2f}M")
            print(
                f"\n({time.perf_counter() - began:.0f} s) rerun: python bench/instructions.py {' '.join(sys.argv[1:])}"
            )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
