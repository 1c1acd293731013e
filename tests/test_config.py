"""Loading and validating config.yaml: every problem named with its line and path."""

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import (
    DEFAULT_DONE,
    DEFAULT_READINESS,
    ConfigError,
    Criterion,
    Settings,
    config_warnings,
    explain_criteria,
    load_config,
    parse_config,
)

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


# ── readiness and done: a type the file leaves out keeps the built-in criteria ──────────────────

ONE_TEAM = "teams: [{name: a, channel: C0001}]\n"


def keys(criteria: list[Criterion]) -> list[str]:
    return [c.key for c in criteria]


def test_a_partial_readiness_section_keeps_the_other_types_built_in():
    config = parse_config(ONE_TEAM + "readiness:\n  quantum: [{key: qubits, label: Qubits available}]\n")
    assert config.story_types == ["eng", "ml", "quantum"]
    assert config.criteria("ready", "ml") == DEFAULT_READINESS["ml"]
    assert config.criteria("ready", "eng") == DEFAULT_READINESS["eng"]
    assert keys(config.criteria("ready", "quantum")) == ["qubits"]
    assert config.criteria("done", "ml") == DEFAULT_DONE["ml"]


def test_criteria_keys_follow_a_copy_made_with_other_criteria():
    config = parse_config(ONE_TEAM + "readiness:\n  quantum: [{key: qubits, label: Qubits available}]\n")
    assert dict(config.criteria_keys("ready"))["quantum"] == ("qubits",)
    assert dict(config.criteria_keys("done"))["ml"] == tuple(keys(DEFAULT_DONE["ml"]))
    other = {**config.readiness, "quantum": [Criterion(key="gates", label="Gates calibrated")]}
    copied = config.model_copy(update={"readiness": other})
    assert dict(copied.criteria_keys("ready"))["quantum"] == ("gates",)
    assert dict(config.criteria_keys("ready"))["quantum"] == ("qubits",)  # the original keeps its own


def test_a_type_the_file_lists_replaces_its_built_in_criteria():
    config = parse_config(ONE_TEAM + "done:\n  ml: [{key: shipped, label: Shipped}]\n")
    assert keys(config.criteria("done", "ml")) == ["shipped"]
    assert config.criteria("done", "eng") == DEFAULT_DONE["eng"]
    assert config.readiness == DEFAULT_READINESS


def test_an_empty_section_changes_nothing():
    assert parse_config(ONE_TEAM + "readiness:\ndone: {}\n").readiness == DEFAULT_READINESS
    assert parse_config(ONE_TEAM + "readiness:\ndone: {}\n").done == DEFAULT_DONE
    assert config_warnings(parse_config(ONE_TEAM + "readiness:\n")) == []


def test_an_explicit_empty_list_means_none_and_is_warned_about():
    config = parse_config(ONE_TEAM + "readiness:\n  eng: []\n")
    assert config.criteria("ready", "eng") == [] and "eng" in config.story_types
    assert config_warnings(config) == [
        "config.yaml:3: readiness.eng: [] means eng stories have no Definition of Ready: every eng story "
        "is Ready for planning with nothing answered; leave eng out to keep the built-in criteria"
    ]


def test_a_new_type_without_done_criteria_is_warned_about():
    config = parse_config(ONE_TEAM + "readiness:\n  quantum: [{key: qubits, label: Qubits}]\n")
    assert config_warnings(config) == [
        "config.yaml:3: readiness.quantum: story type 'quantum' has no Definition of Done (there are no "
        "built-in criteria for it and done: does not list it): `story done` closes quantum stories "
        "without any check; add done: quantum: [...] with its criteria, or [] to say there are none"
    ]


def test_warnings_come_in_line_order():
    config = parse_config(ONE_TEAM + "done:\n  ml: []\nreadiness:\n  eng: []\n")
    assert [w.split(": ")[0] for w in config_warnings(config)] == ["config.yaml:3", "config.yaml:5"]


def test_the_example_and_the_defaults_warn_about_nothing():
    assert config_warnings(load_config(ROOT / "config.example.yaml")) == []
    assert config_warnings(parse_config(ONE_TEAM)) == []


def test_explain_says_where_each_types_criteria_come_from():
    config = parse_config(ONE_TEAM + "readiness:\n  quantum: [{key: qubits, label: Qubits}]\n  eng: []\n")
    explained = {(e.story_type, e.kind): e for e in explain_criteria(config)}
    assert list(explained) == [
        ("eng", "readiness"),
        ("eng", "done"),
        ("ml", "readiness"),
        ("ml", "done"),
        ("quantum", "readiness"),
        ("quantum", "done"),
    ]
    assert explained["ml", "readiness"].origin == "built-in"
    assert explained["ml", "readiness"].criteria == DEFAULT_READINESS["ml"]
    assert explained["eng", "readiness"].origin == "from config.yaml:4"
    assert explained["eng", "readiness"].criteria == []
    assert explained["quantum", "readiness"].origin == "from config.yaml:3"
    assert keys(explained["quantum", "readiness"].criteria) == ["qubits"]
    assert explained["quantum", "done"].origin == "none: no built-in criteria and the file lists none"


# ── every bad value, in a sentence, at its line ──────────────────────────────────────────────


def team_with(extra: str) -> str:
    """One team, with `extra` (YAML lines indented for the team) from line 4."""
    return "teams:\n  - name: a\n    channel: C0001\n" + extra


BAD_VALUES = [
    # (the file, the one problem it has)
    (
        team_with("    holidays: [2026-12-24, 2026-13-45]\n"),
        "config.yaml:4: teams[0].holidays[1]: '2026-13-45' is not a date; write YYYY-MM-DD",
    ),
    (
        team_with("    holidays: [next friday]\n"),
        "config.yaml:4: teams[0].holidays[0]: 'next friday' is not a date; write YYYY-MM-DD",
    ),
    (
        team_with("    holidays: 2026-12-24\n"),
        "config.yaml:4: teams[0].holidays: expected a list of dates, e.g. [2026-12-24, 2026-12-25]",
    ),
    (
        team_with("    ceremonies:\n      standup: {cron: '0 9 * * *', dm_local_time: '25:00'}\n"),
        "config.yaml:5: teams[0].ceremonies.standup.dm_local_time: '25:00' is not a time of day; "
        "write HH:MM (24-hour)",
    ),
    (
        team_with("    ceremonies:\n      standup: {cron: '0 9 * * *', dm_local_time: 9:00}\n"),
        "config.yaml:5: teams[0].ceremonies.standup.dm_local_time: '9:00' is not a time of day; "
        "write HH:MM (24-hour)",
    ),
    (
        team_with("    members: U01ALICE\n"),
        "config.yaml:4: teams[0].members: expected a list of Slack user ids or emails, "
        "e.g. [U0123ABCD, alice@example.com]",
    ),
    (
        team_with("    leads: [alice]\n"),
        "config.yaml:4: teams[0].leads[0]: 'alice' is not a Slack user id such as U0123ABCD or an email "
        "address such as alice@example.com; type /scrum whoami in Slack to see your id",
    ),
    ("teams: []\n", "config.yaml:1: teams: at least one team is needed"),
    ("timezone: UTC\n", "config.yaml:1: teams: at least one team is needed"),
    (
        "teams:\n",
        "config.yaml:1: teams: has no value; write a list of teams, each with at least a name and a "
        "channel, e.g. [{name: recsys, channel: C0123ABCD}]",
    ),
    (
        "teams:\n  - recsys\n",
        "config.yaml:2: teams[0]: expected a team with at least a name and a channel, "
        "e.g. {name: recsys, channel: C0123ABCD}",
    ),
    (
        "teams:\n  - name: a\n    channel: #recsys\n",
        'config.yaml:3: teams[0].channel: has no value; write the id, or the name in quotes ("#recsys"; '
        "without quotes YAML reads # as the start of a comment); type /scrum whoami in a channel to see its id",
    ),
    (
        "teams:\n  - name: a\n    channel: recsys\n",
        "config.yaml:3: teams[0].channel: 'recsys' is not a Slack channel id such as C0123ABCD or a channel "
        'name such as "#recsys"; write the id, or the name in quotes ("#recsys"; without quotes YAML reads '
        "# as the start of a comment); type /scrum whoami in a channel to see its id",
    ),
    (
        "teams:\n  - name: yes\n    channel: C0001\n",
        "config.yaml:2: teams[0].name: true is not a team name; use lowercase letters, digits, - and _ "
        "(at most 40), such as recsys (YAML reads an unquoted yes, no, on or off as true or false: put "
        "quotes around it)",
    ),
    (
        team_with("    governance: C0002\n"),
        "config.yaml:4: teams[0].governance: expected a section with the review channel and approvers, "
        "e.g. {channel: C0123ABCD, approvers: [U0123ABCD]}",
    ),
    (
        team_with("    governance: {channel: C0002, approvers: []}\n"),
        "config.yaml:4: teams[0].governance.approvers: at least one approver is needed: the people who "
        "may decide reviews",
    ),
    (
        team_with("    governance: {channel: C0002, approvers: [U0001], review_sla_hours: 0}\n"),
        "config.yaml:4: teams[0].governance.review_sla_hours: 0 is too small: it must be more than 0",
    ),
    (
        team_with("    governance: {channel: C0002, approvers: [U0001], review_on: {won: production}}\n"),
        "config.yaml:4: teams[0].governance.review_on.won: 'won' is not one of 'proposed', 'running', "
        "'succeeded', 'failed' or 'abandoned'",
    ),
    (
        team_with("    ceremonies: standup\n"),
        "config.yaml:4: teams[0].ceremonies: expected a mapping from ceremony to its settings, "
        'e.g. {standup: {cron: "30 9 * * mon-fri"}}',
    ),
    (
        team_with("    ceremonies:\n      standup:\n"),
        "config.yaml:5: teams[0].ceremonies.standup: has no value; write a ceremony's settings, "
        'e.g. {cron: "30 9 * * mon-fri"}',
    ),
    (
        team_with("    ceremonies:\n      standup: {cron: '99 9 * * *'}\n"),
        "config.yaml:5: teams[0].ceremonies.standup.cron: not a valid cron expression: the minute '99' "
        "is wrong (the last value (99) is higher than the maximum value (59)); write minute hour day "
        'month weekday, e.g. "30 9 * * mon-fri"',
    ),
    (
        team_with("    ceremonies:\n      standup: {cron: '0 9 * *'}\n"),
        "config.yaml:5: teams[0].ceremonies.standup.cron: not a valid cron expression: it has 4 field(s) "
        'where cron needs 5; write minute hour day month weekday, e.g. "30 9 * * mon-fri"',
    ),
    (
        team_with("    ceremonies:\n      planning: {cron: '0 9 * * mon', every_weeks: 9}\n"),
        "config.yaml:5: teams[0].ceremonies.planning.every_weeks: 9 is too large: it must be at most 8",
    ),
    (
        team_with("    ceremonies:\n      planning: {cron: '0 9 * * mon', every_weeks: two}\n"),
        "config.yaml:5: teams[0].ceremonies.planning.every_weeks: 'two' is not a whole number of weeks; "
        "write 1 to 8",
    ),
    (
        team_with("    ceremonies:\n      planning: {cron: '0 9 * * mon', nudge_hours_before: 24}\n"),
        "config.yaml:5: teams[0].ceremonies.planning.nudge_hours_before: expected a list of hours before "
        "planning, e.g. [24, 2]",
    ),
    (
        team_with("    ceremonies:\n      standup: {cron: '0 9 * * *', close_after_minutes: 1}\n"),
        "config.yaml:5: teams[0].ceremonies.standup.close_after_minutes: 1 is too small: it must be at least 5",
    ),
    (
        team_with("    timezone: Mars/Base\n"),
        "config.yaml:4: teams[0].timezone: unknown timezone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
    ),
    (
        team_with("    chanel: C0002\n"),
        "config.yaml:4: teams[0].chanel: unknown option (check the spelling against config.example.yaml); "
        "did you mean 'channel'?",
    ),
    (ONE_TEAM + "app_name: ''\n", "config.yaml:2: app_name: must not be empty"),
    (
        ONE_TEAM + "app_name: " + "x" * 40 + "\n",
        "config.yaml:2: app_name: is 40 characters long; at most 35 fit",
    ),
    (
        ONE_TEAM + "public_url: cadence.example.com\n",
        "config.yaml:2: public_url: 'cadence.example.com' is not an http(s) URL; for example "
        "https://cadence.example.com",
    ),
    (
        ONE_TEAM + "grace_minutes: -5\n",
        "config.yaml:2: grace_minutes: -5 is too small: it must be at least 0",
    ),
    (
        ONE_TEAM + "api_max_body_bytes: lots\n",
        "config.yaml:2: api_max_body_bytes: 'lots' is not a whole number of bytes; for example 65536",
    ),
    (
        ONE_TEAM + "outbox: {max_attempts: 0}\n",
        "config.yaml:2: outbox.max_attempts: 0 is too small: it must be at least 1",
    ),
    (
        ONE_TEAM + "outbox: 8\n",
        "config.yaml:2: outbox: expected a section of delivery settings, e.g. {max_attempts: 16}",
    ),
    (
        ONE_TEAM + "readiness: ml\n",
        "config.yaml:2: readiness: expected a mapping from story type to its criteria, "
        "e.g. {ml: [{key: data_contract, label: …}]}",
    ),
    (
        ONE_TEAM + "readiness:\n  ml:\n",
        "config.yaml:3: readiness.ml: has no value; write [] for no criteria, or leave ml out to keep "
        "the built-in ones",
    ),
    (
        ONE_TEAM + "readiness:\n  ML: []\n",
        "config.yaml:3: readiness.ML: 'ML' is not a story type; use a short lowercase word such as ml or eng",
    ),
    (
        ONE_TEAM + "done:\n  ml: [rollback]\n",
        "config.yaml:3: done.ml[0]: expected a criterion with a key and a label, "
        'e.g. {key: rollback_plan, label: "Rollback plan"}',
    ),
    (
        ONE_TEAM + "done:\n  ml: [{key: Rollback, label: Rollback}]\n",
        "config.yaml:3: done.ml[0].key: 'Rollback' is not a criterion key; use lowercase letters, digits "
        "and _, starting with a letter, e.g. data_contract",
    ),
    (
        ONE_TEAM + "done:\n  ml: [{key: rollback, label: ''}]\n",
        "config.yaml:3: done.ml[0].label: must not be empty",
    ),
    (
        ONE_TEAM + "mlflow: {tracking_uri: mlflow.internal}\n",
        "config.yaml:2: mlflow.tracking_uri: 'mlflow.internal' is not an http(s) URL; for example "
        "http://mlflow.internal:5000",
    ),
    (
        ONE_TEAM
        + "mlflow: {tracking_uri: 'http://m', models: [{name: ranker, team: a, aliases: champion}]}\n",
        "config.yaml:2: mlflow.models[0].aliases: expected a list of model aliases, e.g. [champion]",
    ),
    (
        ONE_TEAM
        + "mlflow: {tracking_uri: 'http://m', models: [{name: ranker, team: a, purpose: staging}]}\n",
        "config.yaml:2: mlflow.models[0].purpose: 'staging' is not one of 'canary' or 'production'",
    ),
    (
        ONE_TEAM + "mlflow: {tracking_uri: 'http://m', models: [{name: ranker, team: a, purpose: }]}\n",
        "config.yaml:2: mlflow.models[0].purpose: has no value; write one of 'canary' or 'production'",
    ),
    (
        team_with("    ceremonies: {standup: {cron: '0 9 * * *', every_weeks: !!int two}}\n"),
        "config.yaml:4: not valid YAML (cannot read 'two' (invalid literal for int() with base 10: 'two'))",
    ),
    (
        "teams:\n\t- name: a\n",
        "config.yaml:2: not valid YAML (found character '\\t' that cannot start any token; indent with "
        "spaces, not tabs)",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD_VALUES, ids=[p.split(": ")[1] for _, p in BAD_VALUES])
def test_each_bad_value_is_named_in_a_sentence(text, problem):
    assert problems_of(text) == [problem]


VALIDATOR_WORDS = (
    "Input should",
    "should have",
    "List should",
    "valid list",
    "^(",
    "[01]",
    "after validation",
)


def test_no_message_reads_as_validator_internals():
    for text, _ in BAD_VALUES:
        for problem in problems_of(text):
            assert not any(word in problem for word in VALIDATOR_WORDS), problem


def test_hand_written_times_and_dates_are_read_as_meant():
    config = parse_config(
        team_with(
            "    holidays: [2026-12-24, '2026-12-31']\n"
            "    ceremonies:\n      standup: {cron: '30 9 * * mon-fri', dm_local_time: 21:30}\n"
        )
    )
    team = config.teams[0]
    assert team.holidays == [date(2026, 12, 24), date(2026, 12, 31)]
    assert team.ceremonies["standup"].dm_local_time == "21:30"  # not 1290, YAML 1.1's base-60 number


def test_problems_are_sorted_by_line():
    text = (
        "teams:\n"  # 1
        "  - name: a\n"  # 2
        "    channel: C0001\n"  # 3
        "    members: [bob]\n"  # 4
        "  - name: a\n"  # 5: the same name again (a rule checked across teams)
        "    channel: C0002\n"  # 6
        "    holidays: [2026-02-30]\n"  # 7
        "timezone: Mars/Base\n"  # 8
        "grace_minutes: -1\n"  # 9
    )
    problems = problems_of(text)
    assert [p.split(": ")[0] for p in problems] == [f"config.yaml:{n}" for n in (4, 5, 7, 8, 9)]
    assert problems[1] == (
        "config.yaml:5: teams[1].name: two teams share the name 'a' (teams[0] has it too); "
        "each team needs its own name"
    )


def test_rules_across_fields_are_reported_while_other_fields_are_wrong():
    text = (
        "teams:\n"  # 1
        "  - name: a\n"  # 2
        "    channel: C0001\n"  # 3
        "    members: [not-an-id]\n"  # 4
        "    governance: {channel: C0009, approvers: [U0001], required_approvals: 2}\n"  # 5
        "    ceremonies:\n"  # 6
        "      review: {cron: '0 15 * * fri', every_weeks: 2, sprint_week: 3}\n"  # 7
        "      retro: {cron: 'whenever', sprint_week: 2}\n"  # 8
        "  - name: b\n"  # 9
        "    channel: C0001\n"  # 10
        "    holidays: [christmas]\n"  # 11
        "mlflow:\n"  # 12
        "  tracking_uri: http://mlflow:5000\n"  # 13
        "  models: [{name: ranker, team: search}]\n"  # 14
        "done:\n"  # 15
        "  ml: [{key: a, label: A}, {key: a, label: ''}]\n"  # 16
    )
    problems = problems_of(text)
    assert problems == [
        "config.yaml:4: teams[0].members[0]: 'not-an-id' is not a Slack user id such as U0123ABCD or an "
        "email address such as alice@example.com; type /scrum whoami in Slack to see your id",
        "config.yaml:5: teams[0].governance.required_approvals: required_approvals is 2 but only 1 approver "
        "is listed; add approvers or lower required_approvals",
        "config.yaml:7: teams[0].ceremonies.review.sprint_week: sprint_week 3 is past every_weeks 2; "
        "choose a week from 1 to 2",
        "config.yaml:8: teams[0].ceremonies.retro.cron: not a valid cron expression: it has 1 field(s) where "
        'cron needs 5; write minute hour day month weekday, e.g. "30 9 * * mon-fri"',
        "config.yaml:8: teams[0].ceremonies.retro.sprint_week: sprint_week 2 is past every_weeks 1 (the "
        "default): set every_weeks to the sprint's length in weeks, or remove sprint_week",
        "config.yaml:10: teams[1].channel: two teams share the channel 'C0001' (teams[0] has it too); "
        "each team needs its own channel",
        "config.yaml:11: teams[1].holidays[0]: 'christmas' is not a date; write YYYY-MM-DD",
        "config.yaml:14: mlflow.models[0].team: mlflow model 'ranker' names team 'search', which is not "
        "configured; use one of the teams under teams: (a, b)",
        "config.yaml:16: done.ml[1].label: must not be empty",
        "config.yaml:16: done.ml[1].key: criterion 'a' is listed twice for type 'ml'; keys must differ",
    ]


def test_a_rule_across_fields_alone_is_reported_once():
    text = team_with("    governance: {channel: C0002, approvers: [U0001, U0001], required_approvals: 2}\n")
    assert problems_of(text) == [
        "config.yaml:4: teams[0].governance.required_approvals: required_approvals is 2 but only 1 "
        "approver is listed; add approvers or lower required_approvals"
    ]


def test_a_key_written_twice_is_a_problem():
    text = "teams:\n  - name: a\n    channel: C0001\n    channel: C0002\nreadiness: {}\nreadiness: {}\n"
    assert problems_of(text) == [
        "config.yaml:4: teams[0].channel: set twice (also on line 3); YAML keeps only the last one, so "
        "remove or merge the other",
        "config.yaml:6: readiness: set twice (also on line 5); YAML keeps only the last one, so remove "
        "or merge the other",
    ]


def test_people_may_be_emails_and_channels_names():
    config = parse_config(
        "teams:\n"
        "  - name: a\n"
        "    channel: '#recsys'\n"
        "    members: [alice@example.com, U02BOB]\n"
        "    governance: {channel: '#ml-reviews', approvers: [carol@example.com]}\n"
    )
    team = config.teams[0]
    assert team.channel == "#recsys" and team.members == ["alice@example.com", "U02BOB"]
    assert team.governance is not None and team.governance.approvers == ["carol@example.com"]
    assert problems_of(team_with("    members: ['alice@', '@example.com', 'a b@example.com']\n")) == [
        f"config.yaml:4: teams[0].members[{i}]: {bad!r} is not a Slack user id such as U0123ABCD or an "
        "email address such as alice@example.com; type /scrum whoami in Slack to see your id"
        for i, bad in enumerate(["alice@", "@example.com", "a b@example.com"])
    ]


def test_a_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_bytes(b"teams:\n  - name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert caught.value.problems == [f"{bad}: not a text file in UTF-8; save it as UTF-8 and try again"]


def test_a_number_where_text_goes_is_read_as_text():
    config = parse_config(
        team_with("    ceremonies: {standup: {cron: '0 9 * * *'}}\n")
        + "mlflow:\n  tracking_uri: http://mlflow:5000\n  experiments: [2024, ranker]\n"
        + "done:\n  ml: [{key: q4, label: 42}]\n"
    )
    assert config.mlflow is not None and config.mlflow.experiments == ["2024", "ranker"]
    assert config.criteria("done", "ml")[0].label == "42"
    assert problems_of(team_with("    members: [12345]\n")) == [
        "config.yaml:4: teams[0].members[0]: 12345 is not a Slack user id such as U0123ABCD or an email "
        "address such as alice@example.com; type /scrum whoami in Slack to see your id"
    ]


def example_with_every_option() -> dict[str, Any]:
    """config.example.yaml as data, with the options it leaves commented out filled in."""
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    data["public_url"] = "https://cadence.example.com"
    data["templates_dir"] = "./my-templates"
    data["mlflow"] = {
        "tracking_uri": "http://mlflow.internal:5000",
        "poll_minutes": 5,
        "experiments": ["recsys-ranker"],
        "models": [{"name": "ranker", "team": "recsys", "aliases": ["champion"], "stages": ["Production"]}],
        "timeout_seconds": 10,
    }
    return data


def option_paths(node: Any, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to an option once: the first item of a list stands for all of them."""
    found = [loc] if loc else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += option_paths(value, (*loc, key))
    elif isinstance(node, list) and node:
        found += option_paths(node[0], (*loc, 0))
    return found


WRONG = [None, "two words", -1, 10**9, [], {}, True]
INTERNALS = re.compile(
    r"Input should|should have|Field required|Value error|\^|instance of|after validation|Extra inputs"
)


def test_every_option_given_a_wrong_value_is_named_in_a_sentence_at_its_line():
    base = example_with_every_option()
    assert parse_config(yaml.safe_dump(base, sort_keys=False))  # valid as it stands
    for loc in option_paths(base):
        for wrong in WRONG:
            data = copy.deepcopy(base)
            parent = data
            for part in loc[:-1]:
                parent = parent[part]
            if parent[loc[-1]] == wrong:
                continue
            parent[loc[-1]] = wrong
            try:
                parse_config(yaml.safe_dump(data, sort_keys=False))
            except ConfigError as exc:
                for problem in exc.problems:
                    assert re.match(r"config\.yaml:\d+: \S", problem), problem
                    assert not INTERNALS.search(problem), (loc, wrong, problem)


def test_the_operations_settings_refuse_bad_values_naming_each():
    """outbox.lease_seconds, check_history and keep_sent_days, and api_requests_per_minute: each bad
    value is named with its line, and nothing starts."""
    text = (
        "teams: [{name: a, channel: C0001}]\n"
        "outbox: {lease_seconds: 1, keep_sent_days: 0, check_history: maybe}\n"
        "api_requests_per_minute: 0\n"
    )
    assert problems_of(text) == [
        "config.yaml:2: outbox.lease_seconds: 1 is too small: it must be at least 2",
        "config.yaml:2: outbox.check_history: 'maybe' is not true or false",
        "config.yaml:2: outbox.keep_sent_days: 0 is too small: it must be at least 1",
        "config.yaml:3: api_requests_per_minute: 0 is too small: it must be at least 1",
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("sqlite+aiosqlite:///file::memory:?cache=shared", "in-memory SQLite"),
        ("sqlite:///cadence.db?mode=memory", "in-memory SQLite"),
        ("mysql://root@localhost/cadence", "SQLite or PostgreSQL, not 'mysql'"),
        ("cadence.db", "not a database URL"),
        ("postgresql//admin:hunter22@db/x", "not a database URL"),
    ],
)
def test_a_database_url_cadence_cannot_run_on_is_refused_with_why(url, says):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert refused.value.problems[0].startswith("DATABASE_URL: ")
    assert says in refused.value.problems[0]
    assert "hunter22" not in str(refused.value)  # a password in a mistyped URL is not printed back


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///cadence.db",
        "sqlite+aiosqlite:////var/lib/cadence/memory.db",
        "postgres://u@db/x",
        "postgresql+asyncpg://db/x",
    ],
)
def test_database_urls_cadence_runs_on_are_kept(url):
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


def test_answer_cache_entries_refuses_what_is_not_a_count_of_answers_naming_it():
    """answer_cache_entries: a whole number from 0 (keep none) to 100,000; anything else is named with
    its line, and nothing starts."""
    for value, says in [
        ("-1", "-1 is too small: it must be at least 0"),
        ("lots", "'lots' is not a whole number"),
        ("2.5", "2.5 is not a whole number"),
        ("200000", "200000 is too large: it must be at most 100000"),
    ]:
        text = f"teams: [{{name: a, channel: C0001}}]\nanswer_cache_entries: {value}\n"
        assert problems_of(text) == [f"config.yaml:2: answer_cache_entries: {says}"]
    assert (
        parse_config("teams: [{name: a, channel: C0001}]\nanswer_cache_entries: 0\n").answer_cache_entries
        == 0
    )
    assert parse_config("teams: [{name: a, channel: C0001}]\n").answer_cache_entries == 256
