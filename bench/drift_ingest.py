"""Drift readings ingested through the HTTP API, against a bare FastAPI app parsing the same bodies,
side by side in one run.

    python bench/drift_ingest.py [--readings 100000] [--batch 1000] [--database-url postgresql://…]

Each server runs in its own process under uvicorn on a loopback port. This process posts batches of
readings one after another (`POST /api/v1/drift`, bearer token) and prints readings per second and the
batch latency. Cadence stores every reading and runs the drift rules (several models and features, most
readings healthy, some breaching so that incidents open and escalate). The baseline is a FastAPI app
with one route that validates the same body with a pydantic model of the same shape and answers with a
count: the cost of HTTP and parsing alone. Target: 5,000 readings/s on SQLite in one process.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ack_latency import free_port, wait_ready  # noqa: E402

TOKEN = "bench-token"
CONFIG = """\
teams: [{name: recsys, channel: C0123RECSYS, members: [U01ALICE], leads: [U01ALICE]}]
drift:
  rules:
    - {model: "ranker-*", metric: psi, direction: above, warn: 0.1, critical: 0.2, team: recsys}
    - {model: "ranker-*", metric: ks_p_value, direction: below, warn: 0.05, team: recsys}
    - {model: "*", metric: auc, direction: below, warn: 0.8, critical: 0.75, for: 2, team: recsys}
"""
MODELS = [f"ranker-{n}" for n in range(5)]
FEATURES = [f"feature_{n}" for n in range(20)]


def serve(kind: str, port: int, db: str) -> None:
    """Runs in the child process."""
    import logging

    import uvicorn

    logging.disable(logging.WARNING)
    if kind == "baseline":
        from typing import Annotated

        from fastapi import FastAPI
        from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

        class ReadingIn(BaseModel):
            model_config = ConfigDict(extra="forbid")
            model: Annotated[str, StringConstraints(min_length=1, max_length=200)]
            metric: Annotated[str, StringConstraints(min_length=1, max_length=100)]
            value: Annotated[float, Field(strict=True, allow_inf_nan=False)]
            window_end: AwareDatetime
            feature: str | None = None
            source: str | None = None
            labels: dict[str, str] | None = None

        class DriftIn(BaseModel):
            readings: list[ReadingIn] = Field(min_length=1)

        app = FastAPI()

        @app.post("/api/v1/drift")
        async def drift(body: DriftIn) -> dict[str, int]:
            return {"received": len(body.readings)}
    else:
        from bot.config import Settings, parse_config
        from bot.store.db import create_engine
        from bot.web import create_web_app

        settings = Settings(
            slack_bot_token="xoxb-bench", slack_signing_secret="s", api_tokens=(f"bench={TOKEN}",)
        )
        app = create_web_app(settings=settings, config=parse_config(CONFIG), engine=create_engine(db))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def batches(total: int, size: int, seed: int = 7) -> list[bytes]:
    """Request bodies: windows a minute apart, each window a PSI and K-S p-value per feature and an AUC
    per model. Most values are healthy; two features of ranker-0 drift for real from the 10th window
    (warn, then critical), and 0.2% of the rest are isolated spikes that open an incident and resolve it
    the next window."""
    rng = random.Random(seed)
    start = datetime(2026, 12, 7, tzinfo=UTC)
    readings = []
    window = 0
    while len(readings) < total:
        end = (start + timedelta(minutes=window)).isoformat().replace("+00:00", "Z")
        for model in MODELS:
            readings.append(
                {"model": model, "metric": "auc", "value": rng.gauss(0.86, 0.01), "window_end": end}
            )
            for feature in FEATURES:
                drifting = model == "ranker-0" and feature in FEATURES[:2] and window >= 10
                if drifting:
                    psi = 0.15 if window < 30 else 0.25
                elif rng.random() < 0.002:
                    psi = 0.12
                else:
                    psi = rng.random() * 0.08
                p = 0.01 if rng.random() < 0.002 else 0.05 + rng.random() * 0.95
                readings.append(
                    {"model": model, "metric": "psi", "value": psi, "window_end": end, "feature": feature}
                )
                readings.append(
                    {
                        "model": model,
                        "metric": "ks_p_value",
                        "value": p,
                        "window_end": end,
                        "feature": feature,
                    }
                )
        window += 1
    readings = readings[:total]
    return [json.dumps({"readings": readings[i : i + size]}).encode() for i in range(0, total, size)]


async def post_all(port: int, bodies: list[bytes]) -> tuple[float, list[float], int]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies = []
    stored = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        await client.post("/api/v1/drift", content=bodies[0][:0] or b'{"readings": []}', headers=headers)
        began = time.perf_counter()
        for body in bodies:
            t = time.perf_counter()
            r = await client.post("/api/v1/drift", content=body, headers=headers)
            latencies.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{r.status_code}: {r.text[:300]}")
            stored += int(r.json().get("stored", r.json().get("received", 0)))
        return time.perf_counter() - began, latencies, stored


async def prepare(db: str) -> None:
    from bot.store.db import create_engine
    from bot.store.migrate import upgrade

    engine = create_engine(db)
    if engine.dialect.name == "postgresql":  # start from an empty schema: the benchmark owns this database
        async with engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", help="PostgreSQL to run Cadence on too (its tables are dropped)")
    parser.add_argument("--serve", choices=("baseline", "cadence"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db)
        return

    bodies = batches(args.readings, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("bare FastAPI + pydantic (baseline)", "baseline", "")]
        runs.append(("cadence, SQLite", "cadence", f"sqlite:///{tmp}/bench.db"))
        if args.database_url:
            runs.append(("cadence, PostgreSQL", "cadence", args.database_url))
        print(f"{args.readings} readings in batches of {args.batch}, one request at a time")
        print(f"{'':<36} {'seconds':>8} {'readings/s':>11} {'batch p50':>10} {'batch p99':>10} {'stored':>8}")
        for name, kind, db in runs:
            if db:
                asyncio.run(prepare(db))
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db", db or "-"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            try:
                wait_ready(port)
                seconds, latencies, stored = asyncio.run(post_all(port, bodies))
            finally:
                proc.terminate()
                proc.wait(10)
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
            print(
                f"{name:<36} {seconds:>8.2f} {args.readings / seconds:>11,.0f} {q[49]:>8.1f}ms {q[98]:>8.1f}ms"
                f" {stored:>8}"
            )
    rerun = f"python bench/drift_ingest.py --readings {args.readings} --batch {args.batch}"
    if args.database_url:
        rerun += f" --database-url {args.database_url}"
    print(f"rerun: {rerun}")


if __name__ == "__main__":
    main()
