"""Emails and #channel names in the configuration, resolved to Slack ids through the Web API.

`cadence serve` and `cadence clock` call `resolve_names` once, before anything is scheduled or
served, and hand the AppConfig it returns to everything else: past this point the bot only ever
sees user and channel ids. `cadence check-config --slack` calls `check_with_slack`, which also asks
Slack whether the ids written in the file exist."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import AppConfig, ConfigError, Loc, cross_field_problems, is_channel_id, is_user_id

Kind = Literal["user", "channel"]

# Errors that are about the token or the app, not about one name: nothing else can be looked up either.
_TOKEN_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
}
_PURPOSE = {
    "users.lookupByEmail": "look people up by email",
    "conversations.list": "find channels by name",
    "users.info": "check user ids",
    "conversations.info": "check channel ids",
}


@dataclass(frozen=True)
class Reference:
    """A person or channel as the configuration file writes it, and where."""

    loc: Loc
    written: str
    kind: Kind

    @property
    def is_id(self) -> bool:
        return is_user_id(self.written) if self.kind == "user" else is_channel_id(self.written)


@dataclass(frozen=True)
class Lookup:
    """What Slack said about a reference: the id it stands for, who or what that is, or the problem."""

    ref: Reference
    id: str | None = None
    detail: str = ""
    problem: str | None = None


class SlackUnavailable(Exception):
    """Slack could not be asked at all (a refused token, a missing scope, no network): one sentence."""


def references(config: AppConfig) -> Iterator[Reference]:
    """Every person and channel the configuration names, in file order."""
    for i, team in enumerate(config.teams):
        yield Reference(("teams", i, "channel"), team.channel, "channel")
        for role in ("members", "leads"):
            for j, person in enumerate(getattr(team, role)):
                yield Reference(("teams", i, role, j), person, "user")
        if team.governance is not None:
            yield Reference(("teams", i, "governance", "channel"), team.governance.channel, "channel")
            for j, person in enumerate(team.governance.approvers):
                yield Reference(("teams", i, "governance", "approvers", j), person, "user")
    for k, rule in enumerate(config.drift.rules):
        if rule.channel is not None:
            yield Reference(("drift", "rules", k, "channel"), rule.channel, "channel")


class SlackNames:
    """Looks references up in Slack, each distinct one once."""

    def __init__(self, client: AsyncWebClient, config: AppConfig) -> None:
        self.client = client
        self.command = config.command
        self.bot = config.app_name.lower()
        self._seen: dict[tuple[Kind, str], Lookup] = {}
        self._channels: dict[str, dict[str, Any]] = {}  # name -> channel, filled by conversations.list
        self._listed_all = False
        self._cursor: str | None = None

    async def lookup(self, ref: Reference, *, check_ids: bool = False) -> Lookup:
        """A name resolved to an id; an id is asked about only with `check_ids` (else taken as written)."""
        if ref.is_id and not check_ids:
            return Lookup(ref, ref.written)
        key = (ref.kind, ref.written)
        if key not in self._seen:
            if ref.kind == "user":
                found = await (self._user_id(ref) if ref.is_id else self._email(ref))
            else:
                found = await (self._channel_id(ref) if ref.is_id else self._channel_name(ref))
            self._seen[key] = found
        seen = self._seen[key]
        return Lookup(ref, seen.id, seen.detail, seen.problem)

    async def check_token(self) -> str:
        """Who the token belongs to ("cadence in Acme"), or SlackUnavailable."""
        response = await self._call("auth.test") or {}
        return f"{response.get('user', 'the bot')} in {response.get('team', 'the workspace')}"

    async def _email(self, ref: Reference) -> Lookup:
        response = await self._call(
            "users.lookupByEmail", {"email": ref.written}, expected={"users_not_found"}
        )
        if response is None:
            return Lookup(
                ref,
                problem=(
                    f"no one in this Slack workspace has the email {ref.written}: check the spelling, or "
                    f"write their user id instead (they see it by typing {self.command} whoami)"
                ),
            )
        user = response.get("user") or {}
        return Lookup(ref, user.get("id"), _person(user))

    async def _user_id(self, ref: Reference) -> Lookup:
        response = await self._call("users.info", {"user": ref.written}, expected={"user_not_found"})
        if response is None:
            return Lookup(
                ref,
                problem=(
                    f"Slack knows no user {ref.written} in this workspace: check the id, or write the "
                    f"person's email instead (anyone can see their own id by typing {self.command} whoami)"
                ),
            )
        user = response.get("user") or {}
        if user.get("deleted"):
            return Lookup(
                ref,
                problem=(
                    f"{ref.written} is {_person(user)}, whose Slack account is deactivated; "
                    "remove them from the configuration"
                ),
            )
        return Lookup(ref, ref.written, _person(user))

    async def _channel_name(self, ref: Reference) -> Lookup:
        name = ref.written.removeprefix("#").lower()
        while name not in self._channels and not self._listed_all:
            await self._next_channel_page()
        channel = self._channels.get(name)
        if channel is None:
            return Lookup(
                ref,
                problem=(
                    f"no channel named #{name} that the bot can see: check the spelling; if the channel "
                    f"is private, invite the bot first (/invite @{self.bot} in the channel); or write "
                    f"the channel id (type {self.command} whoami in the channel to see it)"
                ),
            )
        return Lookup(ref, str(channel["id"]), _channel(channel))

    async def _channel_id(self, ref: Reference) -> Lookup:
        response = await self._call(
            "conversations.info", {"channel": ref.written}, expected={"channel_not_found"}
        )
        if response is None:
            return Lookup(
                ref,
                problem=(
                    f"Slack knows no channel {ref.written} that the bot can see: check the id; if the "
                    f"channel is private, invite the bot first (/invite @{self.bot} in the channel); or "
                    'write the channel\'s name in quotes instead, e.g. "#recsys"'
                ),
            )
        channel = response.get("channel") or {}
        if channel.get("is_archived"):
            return Lookup(
                ref,
                problem=(
                    f"{ref.written} is {_channel(channel)}, which is archived, so messages to it fail; "
                    "unarchive it or choose another channel"
                ),
            )
        return Lookup(ref, ref.written, _channel(channel))

    async def _next_channel_page(self) -> None:
        args: dict[str, Any] = {
            "types": "public_channel,private_channel",
            "exclude_archived": True,
            "limit": 200,
        }
        if self._cursor:
            args["cursor"] = self._cursor
        response = await self._call("conversations.list", args)
        assert response is not None
        for channel in response.get("channels") or []:
            if channel.get("name"):
                self._channels.setdefault(str(channel["name"]).lower(), channel)
        self._cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        self._listed_all = self._cursor is None

    async def _call(
        self,
        method: str,
        args: dict[str, Any] | None = None,
        *,
        expected: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Any] | None:
        """The Web API's answer; None for an `expected` error (the thing asked about does not exist)."""
        try:
            response = await self.client.api_call(
                method, http_verb="GET" if method != "auth.test" else "POST", params=args or {}
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error in expected:
                return None
            raise SlackUnavailable(self._explain(method, error, exc.response.get("needed"))) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SlackUnavailable(
                f"could not reach Slack at {self.client.base_url} ({exc or type(exc).__name__}); "
                "check the network, or write ids instead of emails and #names"
            ) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _explain(self, method: str, error: str, needed: Any) -> str:
        if error in _TOKEN_ERRORS:
            return (
                f"Slack refused SLACK_BOT_TOKEN ({error}); copy the Bot User OAuth Token (xoxb-…) from "
                "the app's Install App page"
            )
        if error == "missing_scope":
            scope = f"the {needed} scope" if needed else "a scope"
            return (
                f"the Slack app lacks {scope}, which it needs to {_PURPOSE.get(method, 'read the directory')}: "
                "update the app with the manifest from `cadence manifest` and reinstall it to the workspace, "
                "or write ids instead of emails and #names"
            )
        return f"Slack answered {method} with the error {error}"


def _person(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    return str(user.get("real_name") or profile.get("real_name") or user.get("name") or user.get("id") or "")


def _channel(channel: dict[str, Any]) -> str:
    return f"#{channel.get('name', '?')}" + (" (private)" if channel.get("is_private") else "")


def _problem_lines(config: AppConfig, found: list[tuple[Loc, str]]) -> list[str]:
    ordered = sorted(found, key=lambda item: config.line(item[0]))
    return list(dict.fromkeys(config.problem(loc, message) for loc, message in ordered))


async def resolve_names(config: AppConfig, client: AsyncWebClient) -> AppConfig:
    """The configuration with every email and #name replaced by its Slack id; a ConfigError naming each
    one Slack does not know (or why Slack could not be asked). Ids are taken as written."""
    names = [ref for ref in references(config) if not ref.is_id]
    if not names:
        return config
    directory = SlackNames(client, config)
    found = []
    for ref in names:
        try:
            found.append(await directory.lookup(ref))
        except SlackUnavailable as exc:  # nothing more can be looked up: say why, at the name that hit it
            raise ConfigError(config.path, [config.problem(ref.loc, str(exc))]) from None
    problems = [(lookup.ref.loc, lookup.problem) for lookup in found if lookup.problem]
    if problems:
        raise ConfigError(config.path, _problem_lines(config, problems))
    resolved = with_ids(config, {lookup.ref.loc: str(lookup.id) for lookup in found})
    # two spellings of one channel or person (a #name and its id) only show once both are ids
    again = cross_field_problems(resolved.model_dump())
    if again:
        raise ConfigError(config.path, _problem_lines(config, again))
    return resolved


async def check_with_slack(config: AppConfig, client: AsyncWebClient) -> tuple[str, list[Lookup]]:
    """Who the token is, and what Slack says about every person and channel the configuration names:
    emails and #names resolved, ids confirmed (or found unknown). SlackUnavailable if it cannot ask."""
    directory = SlackNames(client, config)
    who = await directory.check_token()
    return who, [await directory.lookup(ref, check_ids=True) for ref in references(config)]


def with_ids(config: AppConfig, ids: dict[Loc, str]) -> AppConfig:
    """A copy of the configuration with the references at these paths replaced by ids."""
    teams = []
    for i, team in enumerate(config.teams):
        governance = team.governance
        if governance is not None:
            governance = governance.model_copy(
                update={
                    "channel": ids.get(("teams", i, "governance", "channel"), governance.channel),
                    "approvers": [
                        ids.get(("teams", i, "governance", "approvers", j), person)
                        for j, person in enumerate(governance.approvers)
                    ],
                }
            )
        update: dict[str, Any] = {
            "channel": ids.get(("teams", i, "channel"), team.channel),
            "governance": governance,
        }
        for role in ("members", "leads"):
            update[role] = [
                ids.get(("teams", i, role, j), person) for j, person in enumerate(getattr(team, role))
            ]
        teams.append(team.model_copy(update=update))
    rules = [
        rule.model_copy(update={"channel": ids.get(("drift", "rules", k, "channel"), rule.channel)})
        for k, rule in enumerate(config.drift.rules)
    ]
    drift = config.drift.model_copy(update={"rules": rules})
    return config.model_copy(update={"teams": teams, "drift": drift})
