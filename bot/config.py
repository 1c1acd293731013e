"""Settings from the environment and the team configuration from YAML, both validated on load."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bot.cron import crontab_trigger

_USER_ID = r"^[UW][A-Z0-9]{2,}$"
_CHANNEL_ID = r"^[CGD][A-Z0-9]{2,}$"
_KEY = r"^[a-z][a-z0-9_]{0,39}$"
_TEAM_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_COMMAND = r"^/[a-z0-9_-]{1,31}$"
_URL = r"^https?://\S+$"
_PATTERN_WORDS = {
    _USER_ID: "a Slack user id such as U0123ABCD",
    _CHANNEL_ID: "a Slack channel id such as C0123ABCD",
    _KEY: "a lowercase key such as data_contract",
    _TEAM_NAME: "lowercase letters, digits, - and _",
    _COMMAND: "a slash command such as /scrum",
    _URL: "an http(s) URL",
}
UserId = Annotated[str, StringConstraints(pattern=_USER_ID)]
ChannelId = Annotated[str, StringConstraints(pattern=_CHANNEL_ID)]
CriterionKey = Annotated[str, StringConstraints(pattern=_KEY)]
CeremonyName = Literal["standup", "planning", "review", "retro", "refinement"]
CEREMONIES: tuple[str, ...] = get_args(CeremonyName)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Model):
    key: CriterionKey
    label: str = Field(min_length=1, max_length=75)
    help: str = Field(default="", max_length=150)


ReviewPurpose = Literal["canary", "production"]
ExperimentStatus = Literal["proposed", "running", "succeeded", "failed", "abandoned"]


class Governance(_Model):
    channel: ChannelId
    approvers: list[UserId] = Field(min_length=1)
    required_approvals: int = Field(default=1, ge=1)
    # a review still pending this long after it was requested gets one reminder
    review_sla_hours: float = Field(default=24, gt=0, le=24 * 30)
    # experiment status changes that open a review by themselves, and for what
    review_on: dict[ExperimentStatus, ReviewPurpose] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _enough_approvers(self) -> Governance:
        if self.required_approvals > len(set(self.approvers)):
            raise ValueError(
                f"required_approvals is {self.required_approvals} but only "
                f"{len(set(self.approvers))} approver(s) are listed"
            )
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
    dm_local_time: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            crontab_trigger(value)
        except ValueError as exc:
            raise ValueError(f"not a valid cron expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _week_within_cycle(self) -> Ceremony:
        if self.sprint_week is not None and self.sprint_week > self.every_weeks:
            raise ValueError(f"sprint_week {self.sprint_week} is past every_weeks {self.every_weeks}")
        return self


class Announce(_Model):
    """What the bot posts in the team channel on its own as the sprint moves (each can be turned off)."""

    sprint_start: bool = True
    commits: bool = True  # stories committed to a sprint, forced ones named
    done: bool = True  # a story of the current sprint is done
    close: bool = True  # the close report


class Team(_Model):
    name: Annotated[str, StringConstraints(pattern=_TEAM_NAME)]
    channel: ChannelId
    members: list[UserId] = Field(default_factory=list)
    leads: list[UserId] = Field(default_factory=list)
    timezone: str | None = None
    governance: Governance | None = None
    holidays: list[date] = Field(default_factory=list)
    ceremonies: dict[CeremonyName, Ceremony] = Field(default_factory=dict)
    announce: Announce = Field(default_factory=lambda: Announce())

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    def includes(self, user_id: str) -> bool:
        return user_id in self.members or user_id in self.leads


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from None
    return value


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


class OutboxConfig(_Model):
    max_attempts: int = Field(default=8, ge=1, le=50)  # then the message is dead-lettered
    per_channel_interval_seconds: float = Field(default=1.0, ge=0, le=60)  # Slack allows ~1 msg/s/channel
    backoff_seconds: float = Field(default=2.0, gt=0, le=600)  # doubles per failed attempt
    backoff_cap_seconds: float = Field(default=900.0, gt=0, le=24 * 3600)


class AppConfig(_Model):
    timezone: str = "UTC"
    command: Annotated[str, StringConstraints(pattern=_COMMAND)] = "/scrum"
    app_name: str = Field(default="Cadence", min_length=1, max_length=35)
    public_url: Annotated[str, StringConstraints(pattern=_URL)] | None = None
    teams: list[Team] = Field(min_length=1)
    readiness: dict[str, list[Criterion]] = Field(default_factory=lambda: dict(DEFAULT_READINESS))
    done: dict[str, list[Criterion]] = Field(default_factory=lambda: dict(DEFAULT_DONE))
    grace_minutes: int = Field(default=120, ge=0, le=24 * 60)  # catch-up window for missed ceremonies
    templates_dir: str | None = None  # your own templates, looked up before the built-in ones
    outbox: OutboxConfig = Field(default_factory=lambda: OutboxConfig())
    mlflow: Mlflow | None = None
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("readiness", "done")
    @classmethod
    def _unique_keys(cls, value: dict[str, list[Criterion]]) -> dict[str, list[Criterion]]:
        for story_type, criteria in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,15}", story_type):
                raise ValueError(f"story type {story_type!r} must be a short lowercase word")
            keys = [c.key for c in criteria]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"criterion {dupes[0]!r} is listed twice for type {story_type!r}")
        return value

    @model_validator(mode="after")
    def _unique_teams(self) -> AppConfig:
        for attr in ("name", "channel"):
            seen = [getattr(t, attr) for t in self.teams]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"two teams share the {attr} {dupes[0]!r}")
        return self

    @model_validator(mode="after")
    def _mlflow_teams_exist(self) -> AppConfig:
        names = {t.name for t in self.teams}
        for model in self.mlflow.models if self.mlflow else []:
            if model.team not in names:
                raise ValueError(
                    f"mlflow model {model.name!r} names team {model.team!r}, which is not configured"
                )
        return self

    @property
    def story_types(self) -> list[str]:
        return sorted(set(self.readiness) | set(self.done))

    def criteria(self, kind: str, story_type: str) -> list[Criterion]:
        source = self.readiness if kind == "ready" else self.done
        return list(source.get(story_type, []))

    def team(self, name: str) -> Team | None:
        return next((t for t in self.teams if t.name == name), None)

    def team_timezone(self, team: Team) -> ZoneInfo:
        return ZoneInfo(team.timezone or self.timezone)


class ConfigError(Exception):
    """A configuration file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        else:
            child = None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _message(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "required"
    if error["type"] == "literal_error":
        return f"{error['input']!r} is not one of {error['ctx']['expected']}"
    if error["type"] == "extra_forbidden":
        return "unknown option (check the spelling against config.example.yaml)"
    if error["type"] == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{error['input']!r} is not {_PATTERN_WORDS.get(pattern, 'in the expected format ' + pattern)}"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def parse_config(text: str, path: str | Path = "config.yaml") -> AppConfig:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(path, [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, [f"{path}:1: the file must be a mapping with at least a 'teams' list"])
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(
                p
                for p in error["loc"]
                if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
            )
            line = _line_of(root, loc)
            prefix = f"{path}:{line}" if line else str(path)
            problems.append(f"{prefix}: {_format_loc(loc)}: {_message(error)}")
        raise ConfigError(path, problems) from None


def load_config(path: str | Path) -> AppConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            p, [f"{p}: no such file (copy config.example.yaml to {p} and edit it, or set CADENCE_CONFIG)"]
        )
    return parse_config(p.read_text(encoding="utf-8"), p)


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./cadence.db"


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
        api_url = env.get("SLACK_API_URL") or cls.slack_api_url
        return cls(
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
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
