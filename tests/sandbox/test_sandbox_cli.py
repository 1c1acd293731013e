"""`cadence sandbox` as the README's first command runs it: a process that prints its URL, seeds the demo
on the first start (and only then), and runs on a configuration of one's own with --config."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.config import load_config
from bot.integrations.slack_names import with_ids
from bot.sandbox import demo
from tests.integrations.alertmanager_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def start(db: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", str(port), "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    url = f"http://127.0.0.1:{port}/"
    assert url in first and "no Slack workspace needed" in first
    return process, url


def wait_for_seed(url: str, messages: int) -> dict:
    deadline = time.monotonic() + 30
    state: dict = {}
    while time.monotonic() < deadline:
        try:
            state = httpx.get(url + "sandbox/state", timeout=2).json()
            if len(state["messages"]) >= messages:
                return state
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo's messages never all arrived: {state.get('messages')}")


def test_the_first_command_serves_the_page_with_the_demo_and_seeds_only_once(tmp_path):
    db = tmp_path / "sandbox.db"
    process, url = start(db)
    try:
        state = wait_for_seed(url, 7)
        assert httpx.get(url).status_code == 200
        texts = " ".join(m["text"] for m in state["messages"])
        for seen in ("Sprint 14", "R-1", "D-1", "assigned you S-1"):
            assert seen in texts
    finally:
        process.terminate()
        process.wait(timeout=15)

    again, url = start(db)  # the same file: the stories are there, nothing is seeded twice
    try:
        time.sleep(1.5)
        state = httpx.get(url + "sandbox/state", timeout=5).json()
        assert not any("Sprint 14" in m["text"] and "started" in m["text"] for m in state["messages"])
        answer = httpx.post(
            url + "sandbox/command",
            json={"user": "U0ALICE", "channel": "C0RECSYS", "text": "/scrum story list"},
        )
        assert answer.json()["ok"]
        listing = httpx.get(url + "sandbox/state", timeout=5).json()["messages"][-1]
        assert listing["ephemeral_to"] == "U0ALICE"
        assert sum("S-1" in str(b) for b in listing["blocks"]) >= 1
        assert not any("S-6" in str(b) for b in listing["blocks"]), "five stories, not ten"
    finally:
        again.terminate()
        again.wait(timeout=15)


def test_a_configuration_with_emails_and_channel_names_runs_without_slack():
    config = load_config(ROOT / "config.example.yaml")
    ids, names = demo.references_with_ids(config)
    resolved = with_ids(config, ids)
    recsys = resolved.team("recsys")
    assert recsys is not None and recsys.governance is not None
    assert recsys.channel == "C0RECSYS" and names["C0RECSYS"] == "recsys"
    assert recsys.governance.channel == "C0MLREVIEWS" and names["C0MLREVIEWS"] == "ml-reviews"
    assert recsys.members[:2] == ["U0ALICE", "U0BOB"] and "U03DAVE" in recsys.members
    people = {p.id: p for p in demo.people_of(resolved, names)}
    assert people["U0CAROL"].role == "approver" and people["U03DAVE"].name == "Dave"
    assert demo.channels_of(resolved, names)["C0MLREVIEWS"] == "ml-reviews"


def test_a_broken_configuration_is_refused_naming_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("timezone: Mars/Olympus\nteams: []\n")
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "--config", str(bad), "--db", str(tmp_path / "x.db")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "bad.yaml:1" in err
    assert not (tmp_path / "x.db").exists()
