"""The `cadence` command as an operator runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "config.example.yaml")


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        timeout=60,
    )


def test_check_config_ok(capsys):
    assert main(["check-config", EXAMPLE]) == 0
    assert "OK — 2 team(s): recsys, platform" in capsys.readouterr().out


def test_check_config_lists_problems_and_fails(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams:\n  - name: a\n    channel: C0001\n  - name: b\n")
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(bad)])
    assert exited.value.code == 2
    assert f"{bad}:4: teams[1].channel: required" in capsys.readouterr().err


def test_manifest_for_a_public_url(capsys):
    assert main(["manifest", "--config", EXAMPLE, "--url", "https://cadence.example.com/"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/scrum" and command["should_escape"] is True
    assert command["url"] == "https://cadence.example.com/slack/events"
    assert manifest["settings"]["interactivity"]["request_url"] == "https://cadence.example.com/slack/events"
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert {"commands", "chat:write", "im:write", "users:read"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )


def test_manifest_without_url_is_socket_mode(tmp_path, capsys):
    custom = tmp_path / "c.yaml"
    custom.write_text("command: /standup\napp_name: Tempo\nteams: [{name: a, channel: C0001}]\n")
    assert main(["manifest", "--config", str(custom), "--format", "yaml"]) == 0
    out = capsys.readouterr().out
    assert "command: /standup" in out and "socket_mode_enabled: true" in out and "request_url" not in out
    assert "name: Tempo" in out


def test_serve_without_credentials_names_them_and_how_to_get_them(tmp_path):
    result = run("serve", env={"CADENCE_CONFIG": EXAMPLE, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 2
    assert "missing or invalid SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN" in result.stderr
    assert "cadence manifest" in result.stderr and "Bot User OAuth Token" in result.stderr


def test_serve_refuses_a_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teams: []\n")
    result = run(
        "serve", env={"CADENCE_CONFIG": str(bad), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    )
    assert result.returncode == 2
    assert f"{bad}:1: teams: at least one team is needed" in result.stderr


def test_serve_without_config_file_says_to_copy_the_example(tmp_path):
    result = run("serve", cwd=tmp_path)
    assert result.returncode == 2 and "copy config.example.yaml" in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    result = run("db", "upgrade", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "database is at revision" in result.stdout
    current = run("db", "current", env={"DATABASE_URL": url})
    revision = result.stdout.split("revision ")[1].split()[0]
    assert f"current {revision}" in current.stdout
