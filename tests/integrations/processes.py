"""Cadence run as separate processes for the integration tests: `python -m bot …` with its own
environment and log file, and scratch PostgreSQL databases for them to share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def sql(url: str, statements: list[str]) -> list[tuple]:
    """Run statements on PostgreSQL with a short-lived synchronous connection (asyncpg, in its loop);
    the rows of the last."""
    import asyncpg

    async def go() -> list[tuple]:
        u = make_url(url)
        conn = await asyncpg.connect(
            user=u.username, password=u.password, host=u.host, port=u.port or 5432, database=u.database
        )
        try:
            rows: list[tuple] = []
            for statement in statements:
                rows = [tuple(r) for r in await conn.fetch(statement)]
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())


@contextmanager
def scratch_database(server_url: str, name: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL at `server_url`, dropped afterwards; its URL."""
    admin = make_url(server_url).set(database="postgres").render_as_string(hide_password=False)
    sql(admin, [f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'])
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        sql(admin, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


def cadence_env(database_url: str, slack_api_url: str, config: Path, **extra: str) -> dict[str, str]:
    """The environment a `python -m bot` process runs in: this checkout, a database, Slack's stand-in."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-integration",
        "SLACK_SIGNING_SECRET": "integration-secret",
        "SLACK_API_URL": slack_api_url,
        "CADENCE_CONFIG": str(config),
        **extra,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, process))
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no handler runs, nothing is flushed or released."""
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=15)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                process.terminate()
        for _, process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
