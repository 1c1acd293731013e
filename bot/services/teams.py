"""Which team a request belongs to."""

from __future__ import annotations

import re
from contextvars import ContextVar

from bot.config import AppConfig, Team
from bot.services.errors import Forbidden, Invalid
from bot.text import shortened


def _approves(team: Team, user_id: str) -> bool:
    return team.governance is not None and user_id in team.governance.approvers


def resolve_team(config: AppConfig, *, channel_id: str | None, user_id: str) -> Team:
    """The team whose channel this is, or whose governance channel; else the one team the person
    belongs to; else, for someone in no team, the one team they approve reviews for; else the only team."""
    by_channel = next((t for t in config.teams if t.channel == channel_id), None)
    if by_channel is not None:
        return by_channel
    mine = [t for t in config.teams if t.includes(user_id)]
    # A governance channel belongs to its team. Teams may share one: then the person's teams decide.
    governed = [t for t in config.teams if channel_id and t.governance and t.governance.channel == channel_id]
    if len(governed) == 1:
        return governed[0]
    narrowed = [t for t in governed if t in mine or _approves(t, user_id)]
    if len(narrowed) == 1:
        return narrowed[0]
    if len(mine) == 1:
        return mine[0]
    approved = [t for t in config.teams if _approves(t, user_id)]
    if not mine and len(approved) == 1:  # an approver outside every team belongs to the team they approve for
        return approved[0]
    if len(config.teams) == 1:
        return config.teams[0]
    names = ", ".join(t.name for t in (narrowed or governed or mine or approved or config.teams))
    raise Invalid(
        f"I can't tell which team this is for ({names}). Run the command in your team's channel, or add "
        "--team NAME.",
        field="--team",
    )


def team_named(config: AppConfig, name: str) -> Team:
    """The team a command's --team names."""
    team = config.team(name.strip())
    if team is None:
        known = ", ".join(t.name for t in config.teams)
        raise Invalid(f"There is no team {shortened(name)!r}; the teams are {known}.", field="--team")
    return team


_PERSON = re.compile(r"^[UW][A-Z0-9]{2,31}$")  # a Slack user id; other actors are `api:<label>`, `mlflow`


def is_person(actor: str) -> bool:
    return bool(_PERSON.match(actor))


# The teams the API token of the request in hand may change (None: every team). Set by the API's door
# (bot/api/auth.py) for the request's task, read by admits for actors that are not people.
TOKEN_TEAMS: ContextVar[frozenset[str] | None] = ContextVar("token_teams", default=None)


def admits(team: Team, actor: str) -> bool:
    """Whether `actor` may change the team's work: its members and leads; actors that are not people,
    within the teams their API token is scoped to; and anyone, for a team that lists no people at all."""
    if not is_person(actor):
        scope = TOKEN_TEAMS.get()
        return scope is None or team.name in scope
    return team.includes(actor) or not (team.members or team.leads)


def require_member(config: AppConfig, team_name: str, actor: str, *, doing: str) -> Team:
    """The rule of docs/authorization.md: changing a team's work (its stories and their checklists,
    sprints, experiments, reviews and drift incidents) needs membership of that team, as a member or a
    lead. It is checked here, in the service, whichever door the change came through: a command, a
    button, a form (whatever its private_metadata says) or the sandbox. Actors that are not people (API
    tokens, `api:<label>`, and the MLflow sync) were let in by their own door, which checks their scope."""
    team = config.team(team_name)
    if team is None:
        raise Forbidden(f"Team {team_name} is no longer configured, so nobody can {doing}.")
    if not admits(team, actor):
        raise Forbidden(f"Only members of team {team.name} can {doing}.")
    return team


def require_reader(config: AppConfig, team: Team, actor: str, *, what: str) -> None:
    """With `visibility: team`, a team's work is shown only to its members, leads and approvers (and to
    actors that are not people); with the default `workspace`, to anyone."""
    approver = team.governance is not None and actor in team.governance.approvers
    if config.visibility == "team" and not (admits(team, actor) or approver):
        raise Forbidden(f"Team {team.name} shows {what} to its members only.")


def require_lead(team: Team, user_id: str, *, doing: str, field: str | None = None) -> None:
    """Sprint decisions belong to the team's leads when the team names any, else to its members."""
    if team.leads and user_id not in team.leads:
        raise Forbidden(f"Only the leads of team {team.name} can {doing}.", field=field)
    if not admits(team, user_id):
        raise Forbidden(f"Only members of team {team.name} can {doing}.", field=field)


def people(team: Team) -> list[str]:
    """Everyone of the team, members then leads, each once (those expected at its standup)."""
    return list(dict.fromkeys([*team.members, *team.leads]))


ROLES = ("member", "lead", "approver")


def roles_of(config: AppConfig, user_id: str) -> list[tuple[Team, list[str]]]:
    """Each team the person is part of, with what they are in it (member, lead, approver), in file order."""
    found = []
    for team in config.teams:
        roles = [
            role
            for role, listed in (
                ("member", team.members),
                ("lead", team.leads),
                ("approver", team.governance.approvers if team.governance else []),
            )
            if user_id in listed
        ]
        if roles:
            found.append((team, roles))
    return found


def channel_uses(config: AppConfig, channel_id: str | None) -> list[tuple[Team, str]]:
    """What the configuration uses a channel for: ("team", the team) for a team's channel, ("reviews",
    the team) for where its governance reviews are decided."""
    uses: list[tuple[Team, str]] = []
    for team in config.teams:
        if channel_id and team.channel == channel_id:
            uses.append((team, "team"))
        if channel_id and team.governance and team.governance.channel == channel_id:
            uses.append((team, "reviews"))
    return uses
