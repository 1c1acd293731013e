"""Messages sent twice after a crash: `cadence clock` killed with SIGKILL in the middle of a burst, then
started again, on SQLite and on PostgreSQL.

    python bench/crash_doubles.py [--runs 3] [--messages 60] [--kill-after 15]
                                  [--postgres postgresql://postgres@127.0.0.1:5432/test]

The tests' Slack stand-in posts every message at once but answers 0.4 s later, so at the kill some
messages are in Slack while their rows still say "sending". The baseline is plain at-least-once delivery
(outbox.check_history off: a message in doubt is sent again when its lease ends); Cadence looks for the
outbox id it put in each message's metadata before sending again. The scenario is
tests/integrations/crash_scenario.py, which the test suite runs once per database.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integrations.crash_scenario import Outcome, run  # noqa: E402
from tests.integrations.processes import scratch_database  # noqa: E402


def once(backend: str, pg: str | None, check: bool, args: argparse.Namespace, n: int) -> Outcome:
    with tempfile.TemporaryDirectory() as work:
        options = {"messages": args.messages, "kill_after": args.kill_after}
        if backend == "postgresql":
            assert pg is not None
            with scratch_database(pg, f"cadence_bench_crash_{os.getpid()}_{n}") as url:
                return run(url, Path(work), check_history=check, **options)
        return run(
            f"sqlite+aiosqlite:///{Path(work) / 'crash.db'}", Path(work), check_history=check, **options
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--kill-after", type=int, default=15)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"))
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    print(f"{args.messages} messages, killed after {args.kill_after} reached Slack, {args.runs} runs each\n")
    print("| database | delivery | in doubt at the kill | sent twice | lost | drained after restart |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    n = 0
    for backend in backends:
        for check, name in ((False, "at-least-once (baseline)"), (True, "looks before resending")):
            outcomes = []
            for _ in range(args.runs):
                n += 1
                outcomes.append(once(backend, args.postgres, check, args, n))
            doubt = sum(o.in_doubt_at_kill for o in outcomes)
            twice = sum(o.doubles for o in outcomes)
            lost = sum(o.lost for o in outcomes)
            drained = max(o.drained_seconds for o in outcomes)
            print(f"| {backend} | {name} | {doubt} | {twice} | {lost} | {drained:.1f} s (slowest) |")


if __name__ == "__main__":
    main()
