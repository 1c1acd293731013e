"""Settings from the environment and the team configuration from YAML, both validated on load.

A configuration file is checked in one pass that names every problem with its line: the fields
(pydantic, with messages rewritten for people), the rules that tie fields together (checked on the
raw data too, so they are reported even while other fields are wrong) and keys written twice."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bot.cron import crontab_trigger

_USER_ID = r"[UW][A-Z0-9]{2,}"
_EMAIL = r"[^@\s#<>]+@[^@\s<>]+\.[^@\s<>]+"
_CHANNEL_ID = r"[CGD][A-Z0-9]{2,}"
_CHANNEL_NAME = r"#[^\s#,<>]{1,80}"
_KEY = r"^[a-z][a-z0-9_]{0,39}$"
_STORY_TYPE = r"^[a-z][a-z0-9_]{0,15}$"
_TEAM_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_COMMAND = r"^/[a-z0-9_-]{1,31}$"
_URL = r"^https?://\S+$"
_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"

# Wherever the configuration takes a person it takes a user id or an email, and wherever it takes a
# channel a channel id or a #name; `cadence serve` and `cadence clock` resolve emails and names to ids
# through Slack before they start (bot/integrations/slack_names.py), so the bot itself only sees ids.
UserRef = Annotated[str, StringConstraints(pattern=rf"^(?:{_USER_ID}|{_EMAIL})$")]
ChannelRef = Annotated[str, StringConstraints(pattern=rf"^(?:{_CHANNEL_ID}|{_CHANNEL_NAME})$")]
CriterionKey = Annotated[str, StringConstraints(pattern=_KEY)]
StoryType = Annotated[str, StringConstraints(pattern=_STORY_TYPE)]
CeremonyName = Literal["standup", "planning", "review", "retro", "refinement"]
CEREMONIES: tuple[str, ...] = get_args(CeremonyName)


def is_user_id(value: str) -> bool:
    return re.fullmatch(_USER_ID, value) is not None


def is_channel_id(value: str) -> bool:
    return re.fullmatch(_CHANNEL_ID, value) is not None


def _day(value: Any) -> Any:
    """A holiday: a date written YYYY-MM-DD (YAML dates stay text in this loader, see _Loader)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{_show(value)} is not a date; write YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_day)]


class _CrossFieldError(ValueError):
    """A rule between fields. parse_config checks these rules on the raw data (see cross_field_problems),
    so that they are reported along with every other problem; the validators raising this exist for
    configurations built in code."""


class _Model(BaseModel):
    # a number where text goes is meant as text (an MLflow experiment called 2024, a label of 42)
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Criterion(_Model):
    key: CriterionKey
    label: str = Field(min_length=1, max_length=75)
    help: str = Field(default="", max_length=150)


ReviewPurpose = Literal["canary", "production"]
ExperimentStatus = Literal["proposed", "running", "succeeded", "failed", "abandoned"]


class Governance(_Model):
    channel: ChannelRef
    approvers: list[UserRef] = Field(min_length=1)
    required_approvals: int = Field(default=1, ge=1)
    # a review still pending this long after it was requested gets one reminder
    review_sla_hours: float = Field(default=24, gt=0, le=24 * 30)
    # experiment status changes that open a review by themselves, and for what
    review_on: dict[ExperimentStatus, ReviewPurpose] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _enough_approvers(self) -> Governance:
        problem = _approvals_problem(self.required_approvals, self.approvers)
        if problem:
            raise _CrossFieldError(problem)
        return self


class Ceremony(_Model):
    cron: str
    every_weeks: int = Field(default=1, ge=1, le=8)
    # with every_weeks > 1: which week of the sprint it falls in (1 = the week the sprint starts).
    # Default: the last week for review and retro, the first for everything else.
    sprint_week: int | None = Field(default=None, ge=1, le=8)
    # standup: when the summary posts; planning: readiness nudge rounds before it
    close_after_minutes: int | None = Field(default=None, ge=5, le=24 * 60)
    nudge_hours_before: list[Annotated[int, Field(ge=1, le=14 * 24)]] = Field(default_factory=list)
    grace_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    # standup: DMs to people who opted in go at this local time in each person's Slack time zone
    dm_local_time: Annotated[str, StringConstraints(pattern=_TIME)] | None = None
    # review: the sprint-review summary posts this many minutes before the ceremony (unset: not posted)
    summary_minutes_before: int | None = Field(default=None, ge=0, le=7 * 24 * 60)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        problem = _cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _week_within_cycle(self) -> Ceremony:
        problem = _week_problem(self.sprint_week, self.every_weeks)
        if problem:
            raise _CrossFieldError(problem)
        return self


class Announce(_Model):
    """What the bot posts in the team channel on its own as the sprint moves (each can be turned off)."""

    sprint_start: bool = True
    commits: bool = True  # stories committed to a sprint, forced ones named
    done: bool = True  # a story of the current sprint is done
    close: bool = True  # the close report


class Team(_Model):
    name: Annotated[str, StringConstraints(pattern=_TEAM_NAME)]
    channel: ChannelRef
    members: list[UserRef] = Field(default_factory=list)
    leads: list[UserRef] = Field(default_factory=list)
    timezone: str | None = None
    governance: Governance | None = None
    holidays: list[Day] = Field(default_factory=list)
    ceremonies: dict[CeremonyName, Ceremony] = Field(default_factory=dict)
    announce: Announce = Field(default_factory=lambda: Announce())

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    @field_validator("ceremonies")
    @classmethod
    def _summary_on_review_only(cls, value: dict[str, Ceremony]) -> dict[str, Ceremony]:
        for name, ceremony in value.items():
            if name != "review" and ceremony.summary_minutes_before is not None:
                raise ValueError(
                    f"{name}: summary_minutes_before belongs to the review ceremony (the sprint-review summary)"
                )
        return value

    def includes(self, user_id: str) -> bool:
        return user_id in self.members or user_id in self.leads


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def _cron_problem(value: str) -> str | None:
    """None for a valid five-field cron expression, else what is wrong with it, naming the field."""
    try:
        crontab_trigger(value)
        return None
    except ValueError as exc:
        reason = str(exc)
    how = 'write minute hour day month weekday, e.g. "30 9 * * mon-fri"'
    fields = value.split()
    if len(fields) != 5:
        return f"not a valid cron expression: it has {len(fields)} field(s) where cron needs 5; {how}"
    for i, name in enumerate(_CRON_FIELDS):
        probe = ["*"] * 5
        probe[i] = fields[i]
        try:
            crontab_trigger(" ".join(probe))
        except ValueError as exc:
            detail = re.sub(r"^Error validating expression '[^']*': ", "", str(exc))
            return f"not a valid cron expression: the {name} {fields[i]!r} is wrong ({detail}); {how}"
    return f"not a valid cron expression ({reason}); {how}"


def _criteria(*items: tuple[str, str, str]) -> list[Criterion]:
    return [Criterion(key=k, label=label, help=h) for k, label, h in items]


DEFAULT_READINESS: dict[str, list[Criterion]] = {
    "ml": _criteria(
        ("data_available", "Data availability", "Which dataset and version the work needs, and where it is"),
        ("feature_stability", "Feature stability", "Features are defined and will not change mid-sprint"),
        ("reproducible_env", "Reproducible environment", "Pinned environment or image the work runs in"),
        ("eval_criteria", "Measurable evaluation criteria", "Metric, baseline and the target to beat"),
        ("data_contract", "Data contract", "Schema and owner agreed with the data producer"),
        ("validation_dataset", "Validation data", "Held-out or validation set and how it was split"),
    ),
    "eng": _criteria(
        ("acceptance_criteria", "Acceptance criteria", "How we will know the story is done"),
        ("dependencies", "Dependencies", "Other teams, services or stories this waits on"),
    ),
}

DEFAULT_DONE: dict[str, list[Criterion]] = {
    "ml": _criteria(
        ("data_lineage", "Data lineage", "Where the training data came from, with versions"),
        ("model_evaluation", "Model evaluation", "Results on the validation data against the baseline"),
        ("rollback_plan", "Rollback plan", "How to return to the previous model"),
        ("monitoring", "Monitoring", "Dashboards and alerts for the model in production"),
    ),
    "eng": _criteria(
        ("code_review", "Code review", "Link to the reviewed and merged change"),
        ("tests", "Tests", "Automated tests that cover the change"),
    ),
}
_DEFAULTS = {"readiness": DEFAULT_READINESS, "done": DEFAULT_DONE}


class MlflowModel(_Model):
    name: str = Field(min_length=1)  # registered model name
    team: str  # whose governance channel reviews its promotions
    aliases: list[str] = Field(default_factory=lambda: ["champion"])
    stages: list[str] = Field(default_factory=lambda: ["Production"])
    purpose: ReviewPurpose = "production"


class Mlflow(_Model):
    tracking_uri: Annotated[str, StringConstraints(pattern=_URL)]
    poll_minutes: float = Field(default=5, gt=0, le=24 * 60)
    experiments: list[str] = Field(default_factory=list)  # MLflow experiment names to scan for tagged runs
    models: list[MlflowModel] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10, gt=0, le=120)


DriftMetricName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class DriftRule(_Model):
    """When readings of a model's metric alert a team: thresholds, how long before it opens, where."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    model: str = Field(min_length=1, max_length=200)  # a glob: recsys-* matches every recsys model
    metric: DriftMetricName  # a glob too
    feature: str | None = Field(default=None, min_length=1, max_length=200)  # a glob; None: any feature
    direction: Literal["above", "below"]
    warn: float | None = Field(default=None, allow_inf_nan=False)
    critical: float | None = Field(default=None, allow_inf_nan=False)
    # consecutive breaching windows before an incident opens, and in-range windows before it resolves
    for_windows: int = Field(default=1, ge=1, le=1000, alias="for")
    resolve_after: int = Field(default=1, ge=1, le=1000)
    team: str
    channel: ChannelRef | None = None  # default: the team's channel
    runbook: Annotated[str, StringConstraints(pattern=_URL)] | None = None
    auto_story: Literal["critical", "never"] = "never"

    @model_validator(mode="after")
    def _thresholds(self) -> DriftRule:
        problem = _thresholds_problem(self.direction, self.warn, self.critical)
        if problem:
            raise _CrossFieldError(problem)
        return self


class AlertmanagerLabels(_Model):
    """Which Alertmanager labels (and which annotation) carry what Cadence needs."""

    model: str = "model"
    metric: str = "metric"
    feature: str = "feature"
    team: str = "team"
    severity: str = "severity"
    value: str = "value"  # an annotation


class WorkingHours(_Model):
    start: Annotated[str, StringConstraints(pattern=_TIME)] = "09:00"
    end: Annotated[str, StringConstraints(pattern=_TIME)] = "17:00"

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise _CrossFieldError(f"the working day ends ({self.end}) before it starts ({self.start})")
        return self


class Drift(_Model):
    rules: list[DriftRule] = Field(default_factory=list)
    retention_days: int = Field(default=90, ge=1, le=3650)  # readings older than this are deleted
    ack_timeout_hours: float = Field(default=4, gt=0, le=24 * 14)  # of the team's working time
    repeat_interval_hours: float = Field(default=24, gt=0, le=24 * 30)  # between reminders
    reopen_window_hours: float = Field(default=24, ge=0, le=24 * 90)  # a resolved one breaching again
    working_hours: WorkingHours = Field(default_factory=lambda: WorkingHours())
    alertmanager: AlertmanagerLabels = Field(default_factory=lambda: AlertmanagerLabels())


class OutboxConfig(_Model):
    # then the message is dead-lettered; with the default backoff, 16 attempts ride out about two hours
    # of Slack being unreachable (2 s doubling to the 15-minute cap)
    max_attempts: int = Field(default=16, ge=1, le=50)
    per_channel_interval_seconds: float = Field(default=1.0, ge=0, le=60)  # Slack allows ~1 msg/s/channel
    backoff_seconds: float = Field(default=2.0, gt=0, le=600)  # doubles per failed attempt
    backoff_cap_seconds: float = Field(default=900.0, gt=0, le=24 * 3600)
    # How long a worker holds a message it is sending: one that dies mid-send blocks that channel this long
    # (a file upload, several calls, holds it five times as long). Every call gives up before it ends.
    lease_seconds: float = Field(default=30.0, ge=2, le=600)
    # Before sending again a message whose first send may have reached Slack, look for it in the channel's
    # history (channels:history, groups:history, im:history). Off: resend, so a crash may double a message.
    check_history: bool = True
    # Sent messages are deleted after this many days (a review's or an incident's request is kept while
    # it may still be edited); `cadence outbox list` shows what is left.
    keep_sent_days: int = Field(default=30, ge=1, le=3650)


Loc = tuple[str | int, ...]


CriteriaByType = dict[StoryType, list[Criterion]]
CriteriaKeys = tuple[tuple[str, tuple[str, ...]], ...]  # per story type, the keys of its criteria of a kind


class AppConfig(_Model):
    timezone: str = "UTC"
    command: Annotated[str, StringConstraints(pattern=_COMMAND)] = "/scrum"
    app_name: str = Field(default="Cadence", min_length=1, max_length=35)
    public_url: Annotated[str, StringConstraints(pattern=_URL)] | None = None
    teams: list[Team] = Field(min_length=1)
    # per story type; a type the file leaves out keeps the built-in criteria, [] means none
    readiness: CriteriaByType = Field(default_factory=lambda: dict(DEFAULT_READINESS))
    done: CriteriaByType = Field(default_factory=lambda: dict(DEFAULT_DONE))
    grace_minutes: int = Field(default=120, ge=0, le=24 * 60)  # catch-up window for missed ceremonies
    templates_dir: str | None = None  # your own templates, looked up before the built-in ones
    outbox: OutboxConfig = Field(default_factory=lambda: OutboxConfig())
    mlflow: Mlflow | None = None
    drift: Drift = Field(default_factory=lambda: Drift())
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)
    # requests each API token may make per minute, per process (a moving window); then 429 with Retry-After
    api_requests_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    # who may read a team's stories, sprints, experiments, incidents and decisions (docs/authorization.md)
    visibility: Literal["workspace", "team"] = "workspace"
    # lists and plans kept, rendered, while their team's stories and sprints are unchanged; 0 renders each
    # answer afresh (bot/slack/answers.py)
    answer_cache_entries: int = Field(default=256, ge=0, le=100_000)

    # the file this configuration was read from, for line numbers (None when built in code)
    _source: ConfigSource | None = PrivateAttr(default=None)
    # criteria_keys' answers, each beside the two dicts it came from: a copy made with other criteria
    # (model_copy shares private attributes) works its own out
    _keys_seen: dict[str, tuple[CriteriaByType, CriteriaByType, CriteriaKeys]] = PrivateAttr(
        default_factory=dict
    )

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("readiness", "done", mode="before")
    @classmethod
    def _nothing_is_no_change(cls, value: Any) -> Any:
        return {} if value is None else value  # `readiness:` with every type commented out

    @field_validator("readiness", "done")
    @classmethod
    def _merge_defaults(
        cls, value: dict[str, list[Criterion]], info: ValidationInfo
    ) -> dict[str, list[Criterion]]:
        return {**_DEFAULTS[str(info.field_name)], **value}

    @model_validator(mode="after")
    def _consistent(self) -> AppConfig:
        problems = cross_field_problems(self.model_dump())
        if problems:
            raise _CrossFieldError(f"{_format_loc(problems[0][0])}: {problems[0][1]}")
        return self

    @property
    def source(self) -> ConfigSource | None:
        return self._source

    @property
    def path(self) -> str:
        """The file the configuration was read from ("configuration" when it was built in code)."""
        return self._source.path if self._source is not None else "configuration"

    def line(self, loc: Loc) -> int:
        """The line of a path in that file (0 when unknown)."""
        return (self._source.line(loc) if self._source is not None else None) or 0

    def where(self, loc: Loc) -> str:
        """`file:line` of a path in the file the configuration came from (the file alone if unknown)."""
        return self._source.where(loc) if self._source is not None else self.path

    def problem(self, loc: Loc, message: str) -> str:
        """A problem as every configuration problem is written: `file:line: path: sentence`."""
        return f"{self.where(loc)}: {_format_loc(loc)}: {message}"

    @property
    def story_types(self) -> list[str]:
        return sorted(set(self.readiness) | set(self.done))

    def criteria_keys(self, kind: str) -> CriteriaKeys:
        """Per story type, the keys of its criteria of `kind` ("ready" or "done"). Worked out once per
        configuration: the lists, plans and counts ask for it on every answer."""
        seen = self._keys_seen.get(kind)
        if seen is not None and seen[0] is self.readiness and seen[1] is self.done:
            return seen[2]
        keys = tuple((t, tuple(c.key for c in self.criteria(kind, t))) for t in self.story_types)
        self._keys_seen[kind] = (self.readiness, self.done, keys)
        return keys

    def criteria(self, kind: str, story_type: str) -> list[Criterion]:
        source = self.readiness if kind == "ready" else self.done
        return list(source.get(story_type, []))

    def team(self, name: str) -> Team | None:
        return next((t for t in self.teams if t.name == name), None)

    def team_timezone(self, team: Team) -> ZoneInfo:
        return ZoneInfo(team.timezone or self.timezone)


# ── rules between fields, on raw data ────────────────────────────────────────────────────────


def _whole(value: Any) -> int | None:
    """An int as pydantic would read it from YAML (2, "2", 2.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _approvals_problem(required: Any, approvers: Any) -> str | None:
    need = _whole(required)
    if need is None or not isinstance(approvers, list):
        return None
    listed = len({_text(a) for a in approvers if _text(a) is not None})
    if listed == 0 or need <= listed:
        return None
    are = "approver is" if listed == 1 else "approvers are"
    return (
        f"required_approvals is {need} but only {listed} {are} listed; "
        "add approvers or lower required_approvals"
    )


def _thresholds_problem(direction: Any, warn: Any, critical: Any) -> str | None:
    numbers = [v for v in (warn, critical) if isinstance(v, int | float) and not isinstance(v, bool)]
    if warn is None and critical is None:
        return "a drift rule needs a warn or a critical threshold (or both)"
    if len(numbers) == 2 and direction in ("above", "below"):
        if direction == "above" and critical < warn:
            return f"critical ({critical}) is below warn ({warn}); with direction above, critical is the higher one"
        if direction == "below" and critical > warn:
            return f"critical ({critical}) is above warn ({warn}); with direction below, critical is the lower one"
    return None


def _week_problem(sprint_week: Any, every_weeks: Any) -> str | None:
    week, every = _whole(sprint_week), _whole(1 if every_weeks is None else every_weeks)
    if week is None or every is None or every < 1 or week <= every:
        return None
    if every == 1:
        return (
            f"sprint_week {week} is past every_weeks 1 (the default): set every_weeks to the sprint's "
            "length in weeks, or remove sprint_week"
        )
    return f"sprint_week {week} is past every_weeks {every}; choose a week from 1 to {every}"


def _text(value: Any) -> str | None:
    """Text as pydantic reads it from YAML here (a number where text goes is text), else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def cross_field_problems(data: Any) -> list[tuple[Loc, str]]:
    """The rules that tie fields together, checked on whatever the file holds (values of the wrong
    type are skipped: they are reported as field problems). Each problem is (path, sentence)."""
    problems: list[tuple[Loc, str]] = []
    root = _dict(data)
    teams = _items(root.get("teams"))
    for attr in ("name", "channel"):
        first: dict[str, int] = {}
        for i, team in teams:
            value = _text(_dict(team).get(attr))
            if value is None:
                continue
            seen = value.lower() if value.startswith("#") else value
            if seen in first:
                problems.append(
                    (
                        ("teams", i, attr),
                        f"two teams share the {attr} {value!r} (teams[{first[seen]}] has it too); "
                        f"each team needs its own {attr}",
                    )
                )
            else:
                first[seen] = i
    for i, team in teams:
        governance = _dict(_dict(team).get("governance"))
        problem = _approvals_problem(governance.get("required_approvals", 1), governance.get("approvers"))
        if problem:
            problems.append((("teams", i, "governance", "required_approvals"), problem))
        for name, ceremony in _dict(_dict(team).get("ceremonies")).items():
            c = _dict(ceremony)
            problem = _week_problem(c.get("sprint_week"), c.get("every_weeks"))
            if problem:
                problems.append((("teams", i, "ceremonies", str(name), "sprint_week"), problem))
    names = {str(_text(_dict(t).get("name"))) for _, t in teams if _text(_dict(t).get("name")) is not None}
    known = ", ".join(sorted(n for n in names if n)) or "none yet"
    for j, model in _items(_dict(root.get("mlflow")).get("models")):
        team_name = _text(_dict(model).get("team"))
        if team_name is not None and team_name not in names:
            problems.append(
                (
                    ("mlflow", "models", j, "team"),
                    f"mlflow model {_dict(model).get('name')!r} names team {team_name!r}, which is not "
                    f"configured; use one of the teams under teams: ({known})",
                )
            )
    for j, rule in _items(_dict(root.get("drift")).get("rules")):
        team_name = _text(_dict(rule).get("team"))
        if team_name is not None and team_name not in names:
            problems.append(
                (
                    ("drift", "rules", j, "team"),
                    f"drift rule for {_dict(rule).get('model')!r} names team {team_name!r}, which is not "
                    f"configured; use one of the teams under teams: ({known})",
                )
            )
        r = _dict(rule)
        problem = _thresholds_problem(r.get("direction"), r.get("warn"), r.get("critical"))
        if problem and isinstance(rule, Mapping):
            problems.append((("drift", "rules", j, "critical" if "critical" in r else "warn"), problem))
    for kind in ("readiness", "done"):
        for story_type, criteria in _dict(root.get(kind)).items():
            keys: set[str] = set()
            for k, criterion in _items(criteria):
                key = _text(_dict(criterion).get("key"))
                if key is None:
                    continue
                if key in keys:
                    problems.append(
                        (
                            (kind, str(story_type), k, "key"),
                            f"criterion {key!r} is listed twice for type {story_type!r}; keys must differ",
                        )
                    )
                keys.add(key)
    return problems


# ── reading the file ─────────────────────────────────────────────────────────────────────────

_INT, _FLOAT, _TIMESTAMP = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "timestamp"))


class _Loader(yaml.SafeLoader):
    """YAML as people write it by hand. PyYAML follows YAML 1.1, which reads 21:30 as the number 1290
    (minutes and seconds in base 60) and constructs dates itself, crashing on 2026-13-45. Here both stay
    text, for the configuration's own checks to read or refuse with a sentence."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag such as !!int two
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {getattr(node, 'value', '')!r} ({exc})", node.start_mark
            ) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class ConfigSource:
    """The file a configuration was read from: its path, the YAML nodes (for lines) and the raw data."""

    path: str
    text: str
    root: yaml.Node | None = field(default=None, compare=False, repr=False)
    data: Any = field(default=None, compare=False, repr=False)

    def line(self, loc: Loc) -> int | None:
        return _line_of(self.root, loc)

    def where(self, loc: Loc) -> str:
        line = self.line(loc)
        return f"{self.path}:{line}" if line else self.path

    def listed(self, loc: Loc) -> bool:
        """Whether the file itself sets this path (rather than a default)."""
        node: Any = self.data
        for part in loc:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return False
        return True


class ConfigError(Exception):
    """A configuration file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        else:
            child = None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> list[tuple[Loc, int, str]]:
    """Keys written twice in one mapping: YAML keeps the last silently, so say so."""
    found: list[tuple[Loc, int, str]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = getattr(key, "value", None)
            if not isinstance(name, str) or name == "<<":
                continue
            line = key.start_mark.line + 1
            if name in first:
                found.append(
                    (
                        (*loc, name),
                        line,
                        f"set twice (also on line {first[name]}); YAML keeps only the last one, so "
                        "remove or merge the other",
                    )
                )
            else:
                first[name] = line
            found += _duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*loc, i))
    return found


# ── what to say about a field that does not validate ──────────────────────────────────────────


@dataclass(frozen=True)
class _Expect:
    """What a field takes, for messages: `noun` ("a list of dates"), an `example`, or `how` to write it."""

    noun: str
    example: str = ""
    how: str = ""


_USERS = _Expect("a list of Slack user ids or emails", "[U0123ABCD, alice@example.com]")
_USER = _Expect(
    "a Slack user id such as U0123ABCD or an email address such as alice@example.com",
    how="type /scrum whoami in Slack to see your id",
)
_CHANNEL = _Expect(
    'a Slack channel id such as C0123ABCD or a channel name such as "#recsys"',
    how=(
        'write the id, or the name in quotes ("#recsys"; without quotes YAML reads # as the start of a '
        "comment); type /scrum whoami in a channel to see its id"
    ),
)
_TEXTS = _Expect("a list of names", '[recsys-ranker, "search ranker"]')
_CRITERIA = _Expect("a list of criteria, or [] for none", '[{key: data_contract, label: "Data contract"}]')
_EXPECT: dict[str, _Expect] = {
    "timezone": _Expect("a time zone", how="use an IANA name such as Europe/Berlin"),
    "command": _Expect("a slash command such as /scrum"),
    "app_name": _Expect("a name for the app such as Cadence"),
    "public_url": _Expect("an http(s) URL", "https://cadence.example.com"),
    "grace_minutes": _Expect("a whole number of minutes", "120"),
    "templates_dir": _Expect("a directory", "./my-templates"),
    "api_max_body_bytes": _Expect("a whole number of bytes", "65536"),
    "api_requests_per_minute": _Expect("a whole number of requests", "600"),
    "visibility": _Expect("workspace or team", "team"),
    "teams": _Expect(
        "a list of teams, each with at least a name and a channel", "[{name: recsys, channel: C0123ABCD}]"
    ),
    "teams[]": _Expect("a team with at least a name and a channel", "{name: recsys, channel: C0123ABCD}"),
    "teams[].name": _Expect(
        "a team name", how="use lowercase letters, digits, - and _ (at most 40), such as recsys"
    ),
    "channel": _CHANNEL,
    "members": _USERS,
    "leads": _USERS,
    "approvers": _USERS,
    "members[]": _USER,
    "leads[]": _USER,
    "approvers[]": _USER,
    "governance": _Expect(
        "a section with the review channel and approvers", "{channel: C0123ABCD, approvers: [U0123ABCD]}"
    ),
    "required_approvals": _Expect("a whole number of approvals", "1"),
    "review_sla_hours": _Expect("a number of hours", "24"),
    "review_on": _Expect(
        "a mapping from experiment status to what the review is for", "{succeeded: production}"
    ),
    "holidays": _Expect("a list of dates", "[2026-12-24, 2026-12-25]"),
    "holidays[]": _Expect("a date", how="write YYYY-MM-DD"),
    "ceremonies": _Expect("a mapping from ceremony to its settings", '{standup: {cron: "30 9 * * mon-fri"}}'),
    "ceremonies.*": _Expect("a ceremony's settings", '{cron: "30 9 * * mon-fri"}'),
    "cron": _Expect("a cron expression", how='write minute hour day month weekday, e.g. "30 9 * * mon-fri"'),
    "every_weeks": _Expect("a whole number of weeks", how="write 1 to 8"),
    "sprint_week": _Expect("a week of the sprint", how="write 1 for its first week, 2 for the second …"),
    "close_after_minutes": _Expect("a whole number of minutes", "120"),
    "nudge_hours_before": _Expect("a list of hours before planning", "[24, 2]"),
    "nudge_hours_before[]": _Expect("a whole number of hours", "24"),
    "dm_local_time": _Expect("a time of day", how="write HH:MM (24-hour)"),
    "summary_minutes_before": _Expect("a whole number of minutes before the review", "30"),
    "readiness": _Expect(
        "a mapping from story type to its criteria", "{ml: [{key: data_contract, label: …}]}"
    ),
    "done": _Expect("a mapping from story type to its criteria", "{ml: [{key: rollback_plan, label: …}]}"),
    "readiness.*": _CRITERIA,
    "done.*": _CRITERIA,
    "readiness.*[]": _Expect(
        "a criterion with a key and a label", '{key: data_contract, label: "Data contract"}'
    ),
    "done.*[]": _Expect("a criterion with a key and a label", '{key: rollback_plan, label: "Rollback plan"}'),
    "readiness.*[key]": _Expect("a story type", how="use a short lowercase word such as ml or eng"),
    "done.*[key]": _Expect("a story type", how="use a short lowercase word such as ml or eng"),
    "key": _Expect(
        "a criterion key",
        how="use lowercase letters, digits and _, starting with a letter, e.g. data_contract",
    ),
    "label": _Expect("a label", '"Data contract"'),
    "help": _Expect("a line of help", '"Schema and owner agreed with the data producer"'),
    "outbox": _Expect("a section of delivery settings", "{max_attempts: 16}"),
    "max_attempts": _Expect("a whole number of attempts", "16"),
    "per_channel_interval_seconds": _Expect("a number of seconds", "1"),
    "backoff_seconds": _Expect("a number of seconds", "2"),
    "backoff_cap_seconds": _Expect("a number of seconds", "900"),
    "mlflow": _Expect("a section with at least tracking_uri", "{tracking_uri: http://mlflow.internal:5000}"),
    "tracking_uri": _Expect("an http(s) URL", "http://mlflow.internal:5000"),
    "poll_minutes": _Expect("a number of minutes", "5"),
    "timeout_seconds": _Expect("a number of seconds", "10"),
    "experiments": _TEXTS,
    "experiments[]": _Expect("an MLflow experiment name"),
    "models": _Expect("a list of registered models", "[{name: recsys-ranker, team: recsys}]"),
    "models[]": _Expect("a registered model with a name and a team", "{name: recsys-ranker, team: recsys}"),
    "models[].name": _Expect("a registered model's name", "recsys-ranker"),
    "models[].team": _Expect("the name of a team", "recsys"),
    "aliases": _Expect("a list of model aliases", "[champion]"),
    "stages": _Expect("a list of model stages", "[Production]"),
    "aliases[]": _Expect("a model alias", "champion"),
    "stages[]": _Expect("a model stage", "Production"),
    "drift": _Expect("a section with drift rules", "{rules: [{model: recsys-*, metric: psi, …}]}"),
    "rules": _Expect(
        "a list of drift rules", "[{model: recsys-*, metric: psi, direction: above, warn: 0.1, team: recsys}]"
    ),
    "rules[]": _Expect(
        "a drift rule with model, metric, direction, a threshold and a team",
        "{model: recsys-*, metric: psi, direction: above, warn: 0.1, critical: 0.2, team: recsys}",
    ),
    "rules[].model": _Expect("a model name, * and ? allowed", "recsys-*"),
    "rules[].metric": _Expect("a metric name, * and ? allowed", "psi"),
    "rules[].feature": _Expect("a feature name, * and ? allowed", "user_age"),
    "rules[].team": _Expect("the name of a team", "recsys"),
    "direction": _Expect("a direction", how="write above (higher is worse) or below (lower is worse)"),
    "warn": _Expect("a number", "0.1"),
    "critical": _Expect("a number", "0.2"),
    "for": _Expect("a whole number of windows", "1"),
    "resolve_after": _Expect("a whole number of windows", "1"),
    "runbook": _Expect("an http(s) URL", "https://wiki.example.com/runbooks/drift"),
    "auto_story": _Expect("when to open a retraining story by itself", how="write critical or never"),
    "retention_days": _Expect("a whole number of days", "90"),
    "ack_timeout_hours": _Expect("a number of working hours", "4"),
    "repeat_interval_hours": _Expect("a number of hours", "24"),
    "reopen_window_hours": _Expect("a number of hours", "24"),
    "working_hours": _Expect("a working day", '{start: "09:00", end: "17:00"}'),
    "start": _Expect("a time of day", how="write HH:MM (24-hour)"),
    "end": _Expect("a time of day", how="write HH:MM (24-hour)"),
    "alertmanager": _Expect("the Alertmanager label names", "{model: model, metric: metric}"),
}
_MAPPINGS = {"ceremonies", "readiness", "done", "review_on"}  # their keys are names people choose
_CONTAINER_ERRORS = {"list_type", "dict_type", "model_type", "model_attributes_type", "iterable_type"}
_SCALAR_ERRORS = {
    "string_type",
    "string_pattern_mismatch",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "finite_number",
    "url_parsing",
}


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """A model and every model its fields hold, however nested (list[Team], Governance | None …)."""
    found = [model]
    stack = [f.annotation for f in model.model_fields.values()]
    while stack:
        annotation = stack.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found += _models(annotation)
        else:
            stack += get_args(annotation)
    return found


_ALL_OPTIONS = sorted({name for model in _models(AppConfig) for name in model.model_fields})

# what to say for an option that _EXPECT does not describe, by the kind of value it wanted
_GENERIC = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_GENERIC_CONTAINERS = {
    "list_type": "a list",
    "iterable_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a section of options (key: value)",
    "model_attributes_type": "a section of options (key: value)",
}


def _shape(loc: tuple[Any, ...]) -> str:
    """A path with list indexes and chosen names left out: teams[].ceremonies.*.cron."""
    out, after_mapping = "", False
    for part in loc:
        if isinstance(part, int):
            out += "[]"
        elif part == "[key]":
            out += "[key]"
        elif after_mapping:
            out += ".*"
        else:
            out += ("." if out else "") + str(part)
        after_mapping = isinstance(part, str) and part in _MAPPINGS and not after_mapping
    return out


# top-level options: their entries in _EXPECT describe them only there, not a nested option of that name
_ANCHORED = {
    "teams",
    "readiness",
    "done",
    "mlflow",
    "outbox",
    "drift",
    "command",
    "app_name",
    "public_url",
    "templates_dir",
    "api_max_body_bytes",
    "api_requests_per_minute",
    "visibility",
}


def _expected(loc: tuple[Any, ...]) -> _Expect | None:
    """What the option at `loc` takes: its own entry, else the entry of the end of its path."""
    segments = _shape(loc).split(".")
    for i in range(len(segments)):
        if i and re.split(r"[.\[]", segments[i])[0] in _ANCHORED:
            continue
        found = _EXPECT.get(".".join(segments[i:]))
        if found:
            return found
    return None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return "a " + ("mapping" if isinstance(value, dict) else "list")
    if isinstance(value, (int, float)):
        return _number(value)
    return repr(value)


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _message(error: ErrorDetails) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    ctx = error.get("ctx") or {}
    expect = _expected(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    if kind == "missing":
        return "at least one team is needed" if loc == ("teams",) else "required"
    if kind == "literal_error":
        if value is None:
            return f"has no value; write one of {ctx['expected']}"
        return f"{_show(value)} is not one of {ctx['expected']}"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _ALL_OPTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown option (check the spelling against config.example.yaml){hint}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is {len(str(value))} characters long; at most {ctx.get('max_length')} fit"
    if kind == "too_short":
        if name == "teams":
            return "at least one team is needed"
        if name == "approvers":
            return "at least one approver is needed: the people who may decide reviews"
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items; at most {ctx.get('max_length')} are allowed"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {
            "greater_than_equal": f"too small: it must be at least {_number(ctx.get('ge'))}",
            "greater_than": f"too small: it must be more than {_number(ctx.get('gt'))}",
            "less_than_equal": f"too large: it must be at most {_number(ctx.get('le'))}",
            "less_than": f"too large: it must be less than {_number(ctx.get('lt'))}",
        }[kind]
        return f"{_show(value)} is {bound}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if expect is not None and (kind in _CONTAINER_ERRORS or kind in _SCALAR_ERRORS):
        example = f", e.g. {expect.example}" if expect.example else ""
        if value is None:  # `key:` with nothing after it (or only a comment)
            if _shape(loc) in ("readiness.*", "done.*"):
                return (
                    f"has no value; write [] for no criteria, or leave {name} out to keep the built-in ones"
                )
            if expect.how.startswith(("write", "use")):
                return f"has no value; {expect.how}"
            return f"has no value; write {expect.noun}{example}" + (f"; {expect.how}" if expect.how else "")
        if kind in _CONTAINER_ERRORS:
            return f"expected {expect.noun}{example}"
        hint = expect.how or (f"for example {expect.example}" if expect.example else "")
        said = f"{_show(value)} is not {expect.noun}" + (f"; {hint}" if hint else "")
        if isinstance(value, bool):
            said += " (YAML reads an unquoted yes, no, on or off as true or false: put quotes around it)"
        return said
    if kind in _GENERIC_CONTAINERS:
        return f"expected {_GENERIC_CONTAINERS[kind]}" + (
            "" if value is not None else ", but it has no value"
        )
    if kind in _GENERIC:
        return "has no value" if value is None else f"{_show(value)} is not {_GENERIC[kind]}"
    return str(error["msg"]).removeprefix("Value error, ")


def _field_problems(exc: ValidationError) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        if isinstance(context.get("error"), _CrossFieldError):
            continue  # checked on the raw data, at the field it is about
        raw = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        error["loc"] = raw
        loc = tuple(p for p in raw if p != "[key]")
        problems.append((loc, _message(error)))
    return problems


def parse_config(text: str, path: str | Path = "config.yaml") -> AppConfig:
    """The configuration in `text`, or a ConfigError naming every problem as `file:line: path: sentence`,
    sorted by line."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = str(getattr(exc, "problem", None) or exc)
        if "\\t" in problem or "\t" in problem:
            problem += "; indent with spaces, not tabs"
        raise ConfigError(path, [f"{where}: not valid YAML ({problem})"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(path, [f"{path}:1: the file must be a mapping with at least a 'teams' list"])
    source = ConfigSource(str(path), text, root, data)

    config: AppConfig | None = None
    found: list[tuple[Loc, str]] = []
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        found = _field_problems(exc)
        if not found and not cross_field_problems(data):  # a rule only the validators know: say it
            found = [(tuple(e["loc"]), _message(e)) for e in exc.errors()]
    found += cross_field_problems(data)
    lines: list[tuple[int, str]] = [
        (source.line(loc) or 0, f"{source.where(loc)}: {_format_loc(loc)}: {message}")
        for loc, message in found
    ]
    lines += [
        (line, f"{path}:{line}: {_format_loc(loc)}: {message}")
        for loc, line, message in _duplicate_keys(root)
    ]
    if lines or config is None:
        ordered = sorted(dict.fromkeys(lines), key=lambda item: item[0])
        raise ConfigError(path, [text for _, text in ordered])
    config._source = source
    return config


def load_config(path: str | Path) -> AppConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            p, [f"{p}: no such file (copy config.example.yaml to {p} and edit it, or set CADENCE_CONFIG)"]
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(p, [f"{p}: not a text file in UTF-8; save it as UTF-8 and try again"]) from None
    return parse_config(text, p)


# ── warnings and explanations: a configuration that is valid but may not say what was meant ────


KIND_WORDS = {"readiness": "Definition of Ready", "done": "Definition of Done"}


def config_warnings(config: AppConfig) -> list[str]:
    """Things that are allowed but easy to get wrong by accident, as `file:line: path: sentence`."""
    found: list[tuple[int, str]] = []
    source = config.source
    for story_type in config.story_types:
        for kind in ("readiness", "done"):
            if getattr(config, kind).get(story_type):
                continue
            explicit = source is not None and source.listed((kind, story_type))
            loc: Loc = (kind, story_type) if explicit else (_other(kind), story_type)
            where = config.where(loc)
            if explicit:
                text = (
                    f"{where}: {kind}.{story_type}: [] means {story_type} stories have no "
                    f"{KIND_WORDS[kind]}: {_consequence(kind, story_type)}"
                )
                if story_type in _DEFAULTS[kind]:
                    text += f"; leave {story_type} out to keep the built-in criteria"
            else:
                text = (
                    f"{where}: {_other(kind)}.{story_type}: story type {story_type!r} has no "
                    f"{KIND_WORDS[kind]} (there are no built-in criteria for it and {kind}: does not list "
                    f"it): {_consequence(kind, story_type)}; add {kind}: {story_type}: [...] with its "
                    "criteria, or [] to say there are none"
                )
            line = source.line(loc) if source is not None else None
            found.append((line or 0, text))
    return [text for _, text in sorted(found, key=lambda item: item[0])]


def _other(kind: str) -> str:
    return "done" if kind == "readiness" else "readiness"


def _consequence(kind: str, story_type: str) -> str:
    if kind == "readiness":
        return f"every {story_type} story is Ready for planning with nothing answered"
    return f"`story done` closes {story_type} stories without any check"


@dataclass(frozen=True)
class CriteriaOrigin:
    """The criteria a story type ends up with for one kind, and where they came from."""

    story_type: str
    kind: str  # readiness | done
    criteria: list[Criterion]
    origin: str  # "built-in", "config.yaml:42", or "none"


def explain_criteria(config: AppConfig) -> list[CriteriaOrigin]:
    """For each story type and kind, its criteria and whether they are the built-in ones or the file's."""
    out = []
    for story_type in config.story_types:
        for kind in ("readiness", "done"):
            criteria = list(getattr(config, kind).get(story_type, []))
            source = config.source
            if source is not None and source.listed((kind, story_type)):
                origin = f"from {source.where((kind, story_type))}"
            elif source is None and story_type in getattr(config, kind):
                builtin = _DEFAULTS[kind].get(story_type)
                origin = "built-in" if builtin == criteria else "from the configuration"
            elif story_type in _DEFAULTS[kind]:
                origin = "built-in"
            else:
                origin = "none: no built-in criteria and the file lists none"
            out.append(CriteriaOrigin(story_type, kind, criteria, origin))
    return out


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./cadence.db"


AUDIT_KEY_MIN = 16  # the audit log's HMAC key (bot/services/audit.py), checked when the environment is read


@dataclass(frozen=True)
class Settings:
    """Secrets and addresses, taken from the environment (never from the YAML file)."""

    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = DEFAULT_DATABASE_URL
    config_path: str = "config.yaml"
    api_tokens: tuple[str, ...] = field(default_factory=tuple)
    port: int = 3000
    mlflow_token: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        port = env.get("PORT", "3000")
        if not port.isdigit():
            raise ConfigError("environment", [f"PORT: {port!r} is not a port number"])
        audit_key = env.get("CADENCE_AUDIT_KEY") or ""
        if audit_key and len(audit_key) < AUDIT_KEY_MIN:
            problem = f"CADENCE_AUDIT_KEY: {len(audit_key)} characters; a key needs at least {AUDIT_KEY_MIN}"
            raise ConfigError("environment", [problem])
        from bot.store.db import database_url_problem  # the store knows which URLs it can run on

        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        unusable = database_url_problem(database_url)
        if unusable:
            raise ConfigError("environment", [f"DATABASE_URL: {unusable}"])
        api_url = env.get("SLACK_API_URL") or cls.slack_api_url
        return cls(
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=database_url,
            config_path=env.get("CADENCE_CONFIG") or "config.yaml",
            api_tokens=tuple(t.strip() for t in env.get("CADENCE_API_TOKENS", "").split(",") if t.strip()),
            port=int(port),
            mlflow_token=env.get("MLFLOW_TRACKING_TOKEN", ""),
        )

    def missing_slack_credentials(self) -> list[str]:
        missing = []
        if not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN")
        elif not self.slack_bot_token.startswith("xoxb-"):
            missing.append("SLACK_BOT_TOKEN (must be a bot token starting with xoxb-)")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            missing.append("SLACK_APP_TOKEN (must be an app-level token starting with xapp-)")
        return missing
