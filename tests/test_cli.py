"""The `cadence` command as an operator runs it."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade
from bot.store.models import CeremonyRun, OccasionSeen

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
    out = capsys.readouterr().out
    assert "OK — 2 team(s): recsys, platform" in out
    # the ids and names are made up: the check says it did not ask Slack, and how to
    assert (
        "People and channels were not checked with Slack (11 in the file; 6 are emails or #names, looked "
        "up when the bot starts); `cadence check-config --slack` checks them (needs SLACK_BOT_TOKEN)."
    ) in out


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
    # only the scopes the bot uses: the configuration may name people by email and channels by #name,
    # and resolving them needs the read scopes; the history scopes (and im:write, for a DM's id) let the
    # outbox look for a message a crash left in doubt
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(
        [
            "commands",
            "chat:write",
            "chat:write.public",
            "users:read",
            "users:read.email",
            "channels:read",
            "groups:read",
            "files:write",
            "channels:history",  # the audit heads read back from a governance channel
            "groups:history",
            "im:history",
            "im:write",
        ]
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


def test_serve_refuses_an_api_token_scoped_to_a_team_the_config_does_not_have(tmp_path):
    result = run(
        "serve",
        env={
            "CADENCE_CONFIG": EXAMPLE,
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "CADENCE_API_TOKENS": "ci@recsys+recsis=secret-123456",
        },
    )
    assert result.returncode == 2
    assert (
        "the API token ci in CADENCE_API_TOKENS is scoped to recsis, which the configuration" in result.stderr
    )
    assert not (tmp_path / "x.db").exists()  # refused before anything was created


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


def test_an_in_memory_database_is_refused_before_anything_starts(tmp_path):
    result = run("db", "upgrade", env={"DATABASE_URL": "sqlite:///:memory:"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL: an in-memory SQLite database lives in a single connection" in result.stderr
    assert "sqlite:///cadence.db" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no database file was made in its place


# ── check-config: every problem in sentences, warnings, --explain, --slack ─────────────────────

ONE_TEAM = "teams:\n  - name: recsys\n    channel: C0123RECSYS\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_check_config_names_a_date_that_does_not_exist_without_a_traceback(tmp_path):
    bad = write(tmp_path, ONE_TEAM + "    holidays: [2026-12-24, 2026-13-45]\n")
    result = run("check-config", str(bad))
    assert result.returncode == 2
    assert f"{bad}:4: teams[0].holidays[1]: '2026-13-45' is not a date; write YYYY-MM-DD" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_check_config_lists_every_problem_in_line_order(tmp_path, capsys):
    bad = write(
        tmp_path,
        "timezone: UTC\n"
        "teams:\n"
        "  - name: recsys\n"
        "    channel: C0123RECSYS\n"
        "    ceremonies: {standup: {cron: '30 9 * * mon-fri', dm_local_time: '25:00'}}\n"
        "  - name: recsys\n"
        "    channel: C0789PLATFORM\n"
        "    members: U04FRANK\n",
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(bad)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: the configuration has 3 problem(s):",
        f"  {bad}:5: teams[0].ceremonies.standup.dm_local_time: '25:00' is not a time of day; "
        "write HH:MM (24-hour)",
        f"  {bad}:6: teams[1].name: two teams share the name 'recsys' (teams[0] has it too); "
        "each team needs its own name",
        f"  {bad}:8: teams[1].members: expected a list of Slack user ids or emails, "
        "e.g. [U0123ABCD, alice@example.com]",
    ]


def test_check_config_passes_with_a_warning_for_criteria_left_empty(tmp_path):
    path = write(tmp_path, ONE_TEAM + "readiness:\n  ml: []\n")
    result = run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK — 1 team(s): recsys" in result.stdout
    assert result.stderr.splitlines() == [
        f"warning: {path}:5: readiness.ml: [] means ml stories have no Definition of Ready: every ml story "
        "is Ready for planning with nothing answered; leave ml out to keep the built-in criteria"
    ]


def test_check_config_explain_prints_each_types_criteria_and_their_origin(tmp_path, capsys):
    path = write(
        tmp_path,
        ONE_TEAM + "readiness:\n  quantum:\n    - {key: qubits, label: Qubits available}\n  eng: []\n",
    )
    assert main(["check-config", "--explain", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[: out.index("  ml")] == [
        "Story types and the criteria each ends up with:",
        "  eng",
        f"    readiness (from {path}:7): no criteria",
        "    done      (built-in):",
        "      code_review  Code review",
        "      tests        Tests",
    ]
    ml = out[out.index("  ml") : out.index("  quantum")]
    assert ml[1] == "    readiness (built-in):"
    assert "      data_contract       Data contract" in ml
    assert out[out.index("  quantum") :] == [
        "  quantum",
        f"    readiness (from {path}:6):",
        "      qubits  Qubits available",
        "    done      (none: no built-in criteria and the file lists none): no criteria",
        f"{path}: OK — 1 team(s): recsys",
        "People and channels were not checked with Slack (1 in the file); `cadence check-config --slack` "
        "checks them (needs SLACK_BOT_TOKEN).",
    ]


def test_check_config_slack_needs_the_bot_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert main(["check-config", "--slack", str(write(tmp_path, ONE_TEAM))]) == 2
    assert "check-config --slack asks Slack about the people and channels, so it needs SLACK_BOT_TOKEN" in (
        capsys.readouterr().err
    )


SLACK_CHECKED = (
    "teams:\n"  # 1
    "  - name: recsys\n"  # 2
    "    channel: '#recsys'\n"  # 3
    "    members: [alice@example.com, U02BOB, U0GHOST]\n"  # 4
    "    governance:\n"  # 5
    "      channel: C0456GOV\n"  # 6
    "      approvers: [carol@example.com]\n"  # 7
    "  - name: platform\n"  # 8
    "    channel: C0GONE\n"  # 9
)


@pytest.fixture
def slack_env(fake_slack, monkeypatch):
    """The fake Slack as the workspace: Alice, Bob and Carol; #recsys and #ml-gov."""
    fake_slack.reset()
    fake_slack.users.update(
        {
            "U01ALICE": {"email": "alice@example.com", "real_name": "Alice Adams"},
            "U02BOB": {"email": "bob@example.com", "real_name": "Bob Brown"},
            "U09CAROL": {"email": "carol@example.com", "real_name": "Carol Cruz"},
        }
    )
    fake_slack.channels.update({"C0123RECSYS": {"name": "recsys"}, "C0456GOV": {"name": "ml-gov"}})
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    return fake_slack


def test_check_config_slack_prints_what_each_name_and_id_is_and_flags_unknown_ids(
    tmp_path, slack_env, capsys
):
    slack_env.unknown_users.add("U0GHOST")
    path = write(tmp_path, SLACK_CHECKED)
    assert main(["check-config", "--slack", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"Slack ({slack_env.api_url}, as cadence in Test):",
        f"  {path}:3: teams[0].channel: #recsys → C0123RECSYS (#recsys)",
        f"  {path}:4: teams[0].members[0]: alice@example.com → U01ALICE (Alice Adams)",
        f"  {path}:4: teams[0].members[1]: U02BOB is Bob Brown",
        f"  {path}:6: teams[0].governance.channel: C0456GOV is #ml-gov",
        f"  {path}:7: teams[0].governance.approvers[0]: carol@example.com → U09CAROL (Carol Cruz)",
    ]
    assert captured.err.splitlines() == [
        f"{path}: 2 problem(s) with Slack:",
        f"  {path}:4: teams[0].members[2]: Slack knows no user U0GHOST in this workspace: check the id, or "
        "write the person's email instead (anyone can see their own id by typing /scrum whoami)",
        f"  {path}:9: teams[1].channel: Slack knows no channel C0GONE that the bot can see: check the id; "
        "if the channel is private, invite the bot first (/invite @cadence in the channel); or write the "
        'channel\'s name in quotes instead, e.g. "#recsys"',
    ]


def test_check_config_slack_passes_when_slack_knows_everyone(tmp_path, slack_env, capsys):
    slack_env.channels["C0GONE"] = {"name": "platform"}
    path = write(tmp_path, SLACK_CHECKED.replace(", U0GHOST", ""))
    assert main(["check-config", "--slack", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:9: teams[1].channel: C0GONE is #platform" in out
    assert f"{path}: OK — 2 team(s): recsys, platform" in out


def test_check_config_slack_says_when_slack_refuses_the_token(tmp_path, slack_env, capsys):
    slack_env.fail("auth.test", 200, {"ok": False, "error": "invalid_auth"})
    assert main(["check-config", "--slack", str(write(tmp_path, SLACK_CHECKED))]) == 2
    assert (
        "Slack refused SLACK_BOT_TOKEN (invalid_auth); copy the Bot User OAuth Token"
        in capsys.readouterr().err
    )


# ── serve and clock resolve names before they start ───────────────────────────────────────────


def slack_process_env(fake_slack, config: Path, db: str) -> dict[str, str]:
    return {
        "CADENCE_CONFIG": str(config),
        "DATABASE_URL": db,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": fake_slack.api_url,
    }


def test_serve_refuses_to_start_with_a_name_slack_does_not_know(tmp_path, slack_env):
    path = write(tmp_path, SLACK_CHECKED.replace("carol@example.com", "caroll@example.com"))
    result = run("serve", env=slack_process_env(slack_env, path, f"sqlite:///{tmp_path}/x.db"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}: the configuration has 1 problem(s):",
        f"  {path}:7: teams[0].governance.approvers[0]: no one in this Slack workspace has the email "
        "caroll@example.com: check the spelling, or write their user id instead (they see it by typing "
        "/scrum whoami)",
    ]
    assert not slack_env.of("chat.postMessage")


async def test_clock_resolves_names_before_it_runs_anything(tmp_path, slack_env):
    """`cadence clock` with the team's channel and people written as a #name and emails: the reminder
    it catches up on at start goes to the channel's id."""
    due = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    path = write(
        tmp_path,
        "timezone: UTC\n"
        "teams:\n"
        "  - name: recsys\n"
        "    channel: '#recsys'\n"
        "    members: [alice@example.com, bob@example.com]\n"
        "    leads: [alice@example.com]\n"
        f"    ceremonies: {{retro: {{cron: '{due.minute} {due.hour} * * *'}}}}\n",
    )
    url = f"sqlite:///{tmp_path}/clock.db"
    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session:  # the clock ran yesterday: today's run is caught up
        session.add(
            CeremonyRun(
                team="recsys",
                ceremony="retro",
                scheduled_for=due - timedelta(days=1),
                status="done",
                claimed_by="t",
            )
        )
        session.add(OccasionSeen(team="recsys", kind="retro", since=due - timedelta(days=1)))
        await session.commit()
    await engine.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CADENCE_", "DATABASE_URL"))}
    clock = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "clock",
        env={**env, **slack_process_env(slack_env, path, url)},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if slack_env.delivered() or clock.returncode is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        if clock.returncode is None:
            clock.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(clock.communicate(), timeout=30)
    err = stderr.decode()
    (posted,) = [c.args for c in slack_env.delivered()]
    assert posted["channel"] == "C0123RECSYS", err
    methods = [c.method for c in slack_env.calls]
    assert methods.index("conversations.list") < methods.index("chat.postMessage")
    assert [c.args["email"] for c in slack_env.of("users.lookupByEmail")] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert clock.returncode == 0, err
