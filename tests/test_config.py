"""Loading and validating config.yaml: every problem named with its line and path."""

from pathlib import Path

import pytest

from bot.config import DEFAULT_DONE, DEFAULT_READINESS, ConfigError, Settings, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml")
    return caught.value.problems


def test_example_config_is_valid_and_complete():
    config = load_config(ROOT / "config.example.yaml")
    assert [t.name for t in config.teams] == ["recsys", "platform"]
    assert config.command == "/scrum"
    assert [c.key for c in config.readiness["ml"]] == [
        "data_available",
        "feature_stability",
        "reproducible_env",
        "eval_criteria",
        "data_contract",
        "validation_dataset",
    ]
    assert [c.key for c in config.done["ml"]] == [
        "data_lineage",
        "model_evaluation",
        "rollback_plan",
        "monitoring",
    ]
    assert set(config.teams[0].ceremonies) == {"standup", "planning", "review", "retro", "refinement"}


def test_defaults_apply_when_sections_are_left_out():
    config = parse_config("teams: [{name: a, channel: C0001}]")
    assert config.readiness == DEFAULT_READINESS and config.done == DEFAULT_DONE
    assert config.timezone == "UTC" and config.story_types == ["eng", "ml"]


def test_announce_defaults_to_every_post_and_each_can_be_turned_off():
    config = parse_config(
        "teams: [{name: a, channel: C0001}, {name: b, channel: C0002, announce: {done: false}}]"
    )
    every = config.teams[0].announce
    assert (every.sprint_start, every.commits, every.done, every.close) == (True, True, True, True)
    some = config.teams[1].announce
    assert (some.sprint_start, some.commits, some.done, some.close) == (True, True, False, True)
    example = load_config(ROOT / "config.example.yaml").teams[0].announce
    assert (example.sprint_start, example.commits, example.done, example.close) == (True, True, True, True)


def test_an_unknown_announce_key_is_named_with_its_line():
    problems = problems_of("teams:\n  - name: a\n    channel: C0001\n    announce:\n      standups: false\n")
    assert problems == [
        "config.yaml:5: teams[0].announce.standups: unknown option (check the spelling against config.example.yaml)"
    ]


def test_missing_channel_is_named_with_path_and_line():
    problems = problems_of("teams:\n  - name: a\n    channel: C0001\n  - name: b\n    members: [U0001]\n")
    assert problems == ["config.yaml:4: teams[1].channel: required"]


def test_every_problem_is_reported_at_once():
    text = (
        "timezone: Mars/Base\n"
        "command: scrum\n"
        "teams:\n"
        "  - name: Bad Name\n"
        "    channel: C0001\n"
        "    members: [bob]\n"
        "    colour: blue\n"
        "    ceremonies:\n"
        "      standup: {cron: '99 * * * *'}\n"
        "      party: {cron: '0 9 * * *'}\n"
    )
    problems = problems_of(text)
    joined = "\n".join(problems)
    assert "config.yaml:1: timezone: unknown timezone 'Mars/Base'" in joined
    assert "config.yaml:2: command: 'scrum' is not a slash command such as /scrum" in joined
    assert "config.yaml:4: teams[0].name: 'Bad Name'" in joined
    assert "config.yaml:6: teams[0].members[0]: 'bob' is not a Slack user id" in joined
    assert "config.yaml:7: teams[0].colour: unknown option" in joined
    assert "config.yaml:9: teams[0].ceremonies.standup.cron: not a valid cron expression" in joined
    assert "teams[0].ceremonies.party: 'party' is not one of 'standup'" in joined


def test_duplicate_teams_and_criteria_are_refused():
    assert any(
        "two teams share the name 'a'" in p
        for p in problems_of("teams: [{name: a, channel: C0001}, {name: a, channel: C0002}]")
    )
    assert any(
        "two teams share the channel 'C0001'" in p
        for p in problems_of("teams: [{name: a, channel: C0001}, {name: b, channel: C0001}]")
    )
    dup = "teams: [{name: a, channel: C0001}]\nreadiness:\n  ml: [{key: x, label: X}, {key: x, label: Y}]\n"
    assert any("criterion 'x' is listed twice" in p for p in problems_of(dup))


def test_governance_needs_enough_approvers():
    text = "teams:\n  - name: a\n    channel: C0001\n    governance: {channel: C0002, approvers: [U0001], required_approvals: 2}\n"
    assert any("required_approvals is 2 but only 1 approver" in p for p in problems_of(text))


def test_not_yaml_and_not_a_mapping():
    assert problems_of("teams: [unclosed")[0].startswith("config.yaml:1: not valid YAML")
    assert "must be a mapping" in problems_of("- just\n- a list\n")[0]


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config.yaml")
    assert "copy config.example.yaml" in caught.value.problems[0]


def test_settings_from_environment():
    settings = Settings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "DATABASE_URL": "postgresql://db/x",
            "CADENCE_CONFIG": "/etc/cadence.yaml",
            "PORT": "8080",
            "CADENCE_API_TOKENS": "a, b,,",
        }
    )
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.database_url == "postgresql://db/x" and settings.config_path == "/etc/cadence.yaml"
    assert settings.port == 8080 and settings.api_tokens == ("a", "b")
    assert settings.missing_slack_credentials() == []


def test_settings_name_missing_or_wrong_credentials():
    assert Settings.from_env({}).missing_slack_credentials() == ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"]
    wrong = Settings.from_env(
        {"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxp-user", "SLACK_APP_TOKEN": "x"}
    )
    assert wrong.missing_slack_credentials() == [
        "SLACK_BOT_TOKEN (must be a bot token starting with xoxb-)",
        "SLACK_APP_TOKEN (must be an app-level token starting with xapp-)",
    ]
    with pytest.raises(ConfigError):
        Settings.from_env({"PORT": "eighty"})
