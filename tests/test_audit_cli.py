"""`cadence audit verify|export` as an operator (or an auditor) runs it, against a SQLite file that
someone may have tampered with by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services.audit import row_hash

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("at", "actor", "action", "subject", "payload", "prev_hash", "hash")

SEED = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from bot.services import audit
from bot.store.db import create_engine, session_factory, unit_of_work

async def main(url, n):
    engine = create_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            for i in range(1, n + 1):
                await audit.record(
                    s,
                    actor="U09CAROL" if i % 2 else "api:pipeline",
                    action="review.approve" if i % 2 else "experiment.status",
                    subject=f"R-{i}",
                    payload={"n": i, "rationale": f"reason {i} — ünïcode", "nested": {"b": 1, "a": [i]}},
                    at=datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC) + timedelta(days=i - 1),
                )
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**base, "DATABASE_URL": url, "PYTHONIOENCODING": "utf-8"},
        cwd=ROOT,
        timeout=120,
    )


def cadence(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "bot", *args, url=url)


class AuditDb:
    """A migrated SQLite database in a temporary directory, and raw access to its audit table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def seed(self, n: int) -> None:
        result = run("-c", SEED, self.url, str(n), url=self.url)
        assert result.returncode == 0, result.stderr

    def sql(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                for sql, params in statements:
                    conn.execute(sql, params)
        finally:
            conn.close()

    def rows(self) -> dict[int, dict[str, object]]:
        conn = sqlite3.connect(self.path)
        conn.row_factory = sqlite3.Row
        try:
            return {r["seq"]: dict(r) for r in conn.execute("SELECT * FROM audit_event ORDER BY seq")}
        finally:
            conn.close()

    def verify(self) -> subprocess.CompletedProcess[str]:
        return cadence("audit", "verify", url=self.url)

    def export(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cadence("audit", "export", *args, url=self.url)


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, so copying the file copies every row."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _copy(template: Path, to: Path) -> AuditDb:
    to.write_bytes(template.read_bytes())
    return AuditDb(to)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty database file; each test works on its own copy."""
    path = tmp_path_factory.mktemp("audit-cli") / "empty.db"
    result = cadence("db", "upgrade", url=f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    _checkpoint(path)
    return path


@pytest.fixture(scope="module")
def five_rows(migrated: Path) -> Path:
    """The migrated database with five audit rows, one a day from 1 March 2026."""
    db = _copy(migrated, migrated.with_name("five.db"))
    db.seed(5)
    _checkpoint(db.path)
    return db.path


@pytest.fixture
def audit_db(migrated: Path, tmp_path: Path) -> AuditDb:
    return _copy(migrated, tmp_path / "cadence.db")


@pytest.fixture
def seeded(five_rows: Path, tmp_path: Path) -> AuditDb:
    return _copy(five_rows, tmp_path / "cadence.db")


def assert_tampered(result: subprocess.CompletedProcess[str], first_bad: int, words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "audit log TAMPERED" in result.stderr
    assert f"first bad row: {first_bad};" in result.stderr
    assert words in result.stderr
    assert "OK" not in result.stdout


# --- verify ------------------------------------------------------------------------------------


def test_verify_an_intact_log(seeded):
    result = seeded.verify()
    assert result.returncode == 0, result.stderr
    assert "audit log OK: 5 rows, every hash matches" in result.stdout


def test_verify_an_empty_log(audit_db):
    result = audit_db.verify()
    assert result.returncode == 0, result.stderr
    assert "0 rows" in result.stdout


def test_verify_after_more_rows_are_appended(seeded):
    seeded.seed(3)
    result = seeded.verify()
    assert result.returncode == 0 and "8 rows" in result.stdout


def test_a_changed_payload_is_named(seeded):
    seeded.sql(("UPDATE audit_event SET payload = ? WHERE seq = 3", ('{"n":3,"rationale":"fine"}',)))
    result = seeded.verify()
    assert_tampered(result, 3, "row 3 was changed after it was written")
    assert "2 rows before it verify" in result.stderr


def test_a_changed_actor_is_named(seeded):
    seeded.sql(("UPDATE audit_event SET actor = 'U99MALLORY' WHERE seq = 2", ()))
    assert_tampered(seeded.verify(), 2, "row 2 was changed")


def test_a_changed_time_is_named(seeded):
    at = str(seeded.rows()[4]["at"])
    seeded.sql(("UPDATE audit_event SET at = ? WHERE seq = 4", (at.replace("09:30", "08:30"),)))
    assert_tampered(seeded.verify(), 4, "row 4 was changed")


def test_a_deleted_middle_row_is_named(seeded):
    seeded.sql(("DELETE FROM audit_event WHERE seq = 3", ()))
    assert_tampered(seeded.verify(), 3, "row 3 is missing")


def test_a_deleted_first_row_is_named(seeded):
    seeded.sql(("DELETE FROM audit_event WHERE seq = 1", ()))
    assert_tampered(seeded.verify(), 1, "row 1 is missing")


def test_a_deleted_last_row_is_named(seeded):
    seeded.sql(("DELETE FROM audit_event WHERE seq = 5", ()))
    result = seeded.verify()
    assert_tampered(result, 5, "row 5 is missing: 5 rows were written, 4 remain")


def test_the_last_two_rows_deleted_are_named(seeded):
    seeded.sql(("DELETE FROM audit_event WHERE seq >= 4", ()))
    assert_tampered(seeded.verify(), 4, "row 4 is missing")


def test_two_rows_swapped_are_named(seeded):
    rows = seeded.rows()
    assigns = ", ".join(f"{c} = ?" for c in COLUMNS)
    # hash is unique: park row 2's first, then give each row the other's content
    seeded.sql(
        ("UPDATE audit_event SET hash = 'parked' WHERE seq = 2", ()),
        (f"UPDATE audit_event SET {assigns} WHERE seq = 3", (*(rows[2][c] for c in COLUMNS),)),
        (f"UPDATE audit_event SET {assigns} WHERE seq = 2", (*(rows[3][c] for c in COLUMNS),)),
    )
    swapped = seeded.rows()
    assert swapped[2]["payload"] == rows[3]["payload"] and swapped[3]["payload"] == rows[2]["payload"]
    assert_tampered(seeded.verify(), 2, "row 2")


def test_a_row_rehashed_after_editing_breaks_the_next_one(seeded):
    row = seeded.rows()[2]
    forged = '{"n":2,"rationale":"forged"}'
    at = datetime.fromisoformat(str(row["at"])).replace(tzinfo=UTC)
    new_hash = row_hash(
        seq=2,
        at=at,
        actor=str(row["actor"]),
        action=str(row["action"]),
        subject=str(row["subject"]),
        payload=forged,
        prev_hash=str(row["prev_hash"]),
    )
    assert new_hash != row["hash"]
    seeded.sql(("UPDATE audit_event SET payload = ?, hash = ? WHERE seq = 2", (forged, new_hash)))
    result = seeded.verify()
    assert_tampered(result, 3, "row 3 does not follow row 2")
    assert "2 rows before it verify" in result.stderr


def test_the_recomputed_hash_matches_what_was_written(seeded):
    """The check above is only meaningful if recomputing an untouched row gives its stored hash."""
    row = seeded.rows()[2]
    at = datetime.fromisoformat(str(row["at"])).replace(tzinfo=UTC)
    assert (
        row_hash(
            seq=2,
            at=at,
            actor=str(row["actor"]),
            action=str(row["action"]),
            subject=str(row["subject"]),
            payload=str(row["payload"]),
            prev_hash=str(row["prev_hash"]),
        )
        == row["hash"]
    )


# --- export ------------------------------------------------------------------------------------


def test_export_jsonl_is_one_object_per_line_with_the_payload_parsed(seeded):
    result = seeded.export("--format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    objects = [json.loads(line) for line in lines]
    assert [o["seq"] for o in objects] == [1, 2, 3, 4, 5]
    first = objects[0]
    assert set(first) == {"seq", "at", "actor", "action", "subject", "payload", "prev_hash", "hash"}
    assert first["payload"] == {"n": 1, "rationale": "reason 1 — ünïcode", "nested": {"a": [1], "b": 1}}
    assert (first["actor"], first["action"], first["subject"]) == ("U09CAROL", "review.approve", "R-1")
    assert first["at"] == "2026-03-01T09:30:15.123456+00:00"
    assert objects[1]["prev_hash"] == first["hash"]
    stored = seeded.rows()
    assert [o["hash"] for o in objects] == [stored[n]["hash"] for n in range(1, 6)]


def test_export_defaults_to_jsonl(seeded):
    result = seeded.export()
    assert result.returncode == 0
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [1, 2, 3, 4, 5]


def test_export_csv_has_a_header_and_json_payloads(seeded):
    result = seeded.export("--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "seq,at,actor,action,subject,payload,prev_hash,hash"
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["seq"] for r in records] == ["1", "2", "3", "4", "5"]
    assert json.loads(records[2]["payload"])["rationale"] == "reason 3 — ünïcode"
    assert records[1]["actor"] == "api:pipeline"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_since_a_date(seeded, fmt):
    result = seeded.export("--format", fmt, "--since", "2026-03-03")
    assert result.returncode == 0, result.stderr
    if fmt == "jsonl":
        seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    else:
        seqs = [int(r["seq"]) for r in csv.DictReader(io.StringIO(result.stdout))]
    assert seqs == [3, 4, 5]


def test_export_since_after_the_last_row_is_empty(seeded):
    result = seeded.export("--since", "2026-04-01")
    assert result.returncode == 0 and result.stdout == ""
    header_only = seeded.export("--format", "csv", "--since", "2026-04-01")
    assert header_only.stdout.splitlines() == ["seq,at,actor,action,subject,payload,prev_hash,hash"]


def test_export_since_the_first_day_keeps_everything(seeded):
    result = seeded.export("--since", "2026-03-01")
    assert len(result.stdout.splitlines()) == 5


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "03/01/2026", "2026-02-30"])
def test_export_with_a_bad_since_exits_2(seeded, since):
    result = seeded.export("--since", since)
    assert result.returncode == 2
    assert f"--since {since!r} is not a date" in result.stderr
    assert "YYYY-MM-DD" in result.stderr
    assert result.stdout == ""


def test_export_of_an_empty_log(audit_db):
    result = audit_db.export()
    assert result.returncode == 0 and result.stdout == ""


def test_export_does_not_hide_tampering_but_verify_does_not_pass(seeded):
    seeded.sql(("UPDATE audit_event SET payload = ? WHERE seq = 1", ('{"n":1}',)))
    exported = seeded.export()
    assert exported.returncode == 0
    assert json.loads(exported.stdout.splitlines()[0])["payload"] == {"n": 1}
    assert seeded.verify().returncode == 1


# --- rekey: an unkeyed log signed with CADENCE_AUDIT_KEY ---------------------------------------


def _with_env(extra: dict[str, str], *args: str, url: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**base, "DATABASE_URL": url, "PYTHONIOENCODING": "utf-8", **extra},
        cwd=ROOT,
        timeout=120,
    )


def test_rekey_signs_the_log_and_only_the_key_verifies_it(seeded):
    key = {"CADENCE_AUDIT_KEY": "the-operators-key-0123456789"}
    result = _with_env(key, "audit", "rekey", url=seeded.url)
    assert result.returncode == 0, result.stderr
    assert "5 rows" in result.stdout

    assert "audit log OK: 6 rows" in _with_env(key, "audit", "verify", url=seeded.url).stdout
    without = seeded.verify()
    assert_tampered(without, 1, "row 1 was changed after it was written")


def test_rekey_without_a_key_says_which_variable_to_set(seeded):
    result = seeded.verify()
    assert result.returncode == 0
    result = cadence("audit", "rekey", url=seeded.url)
    assert result.returncode == 2
    assert "set CADENCE_AUDIT_KEY" in result.stderr


def test_a_key_too_short_to_be_one_is_named_not_a_traceback(seeded):
    result = _with_env({"CADENCE_AUDIT_KEY": "short"}, "audit", "verify", url=seeded.url)
    assert result.returncode == 2, result.stderr
    assert "CADENCE_AUDIT_KEY: 5 characters; a key needs at least 16" in result.stderr
    assert "Traceback" not in result.stderr
