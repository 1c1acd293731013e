"""The subcommands of the slash command: one table of words, usage lines and handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.services.errors import Invalid
from bot.slack.context import Invocation
from bot.slack.parsing import unescape

Reply = dict[str, Any] | None  # an ack body, or None when a modal opens instead
Handler = Callable[[Invocation, list[str]], Awaitable[Reply]]


@dataclass(frozen=True)
class Subcommand:
    words: tuple[str, ...]
    usage: str
    summary: str
    handler: Handler
    reads: bool = False  # only shows something: a replay may be answered again (see replays.first_time)


def _table() -> list[Subcommand]:
    from bot.slack.commands import drift, experiments, people, ready, sprint, story
    from bot.slack.commands import help as help_cmd

    return [
        Subcommand(("help",), "help", "List every command", help_cmd.show_help, reads=True),
        Subcommand(
            ("story", "add"),
            "story add <title> [--type ml|eng] [--owner @user] [--points N] "
            '[--sprint current|next|NAME [--force reason="…"]]',
            "Add a story (no arguments opens a form)",
            story.add,
        ),
        Subcommand(
            ("story", "list"),
            "story list [--mine] [--sprint current|next|NAME|backlog] [--not-ready] [--all]",
            "List open stories of your team",
            story.list_,
            reads=True,
        ),
        Subcommand(
            ("story", "show"), "story show S-n", "Show a story with its checklists", story.show, reads=True
        ),
        Subcommand(("story", "edit"), "story edit S-n", "Edit a story in a form", story.edit),
        Subcommand(("story", "assign"), "story assign S-n @user", "Give a story a new owner", story.assign),
        Subcommand(("story", "start"), "story start S-n", "Mark a story in progress", story.start),
        Subcommand(
            ("story", "block"),
            'story block S-n reason="…"',
            "Mark a story blocked, saying what it waits for",
            story.block,
        ),
        Subcommand(("story", "unblock"), "story unblock S-n", "Back in progress", story.unblock),
        Subcommand(
            ("story", "done"), "story done S-n", "Mark done (checks the Definition of Done)", story.done
        ),
        Subcommand(
            ("story", "drop"),
            "story drop S-n",
            "Take a story out of its sprint, back to the backlog",
            story.drop,
        ),
        Subcommand(
            ("story", "archive"),
            "story archive S-n",
            "Put away a story nobody will do (audited)",
            story.archive,
        ),
        Subcommand(
            ("ready",),
            'ready S-n [key=value …] [key=n/a reason="…"]',
            "Show or fill the Definition of Ready",
            ready.ready,
        ),
        Subcommand(
            ("dod",),
            'dod S-n [key=value …] [key=n/a reason="…"]',
            "Show or fill the Definition of Done",
            ready.dod,
        ),
        Subcommand(
            ("sprint", "start"),
            'sprint start NAME --from YYYY-MM-DD --to YYYY-MM-DD [--goal "…"]',
            "Create a sprint (current if none is, else next)",
            sprint.start,
        ),
        Subcommand(
            ("sprint", "current"),
            "sprint current",
            "The current sprint at a glance",
            sprint.current,
            reads=True,
        ),
        Subcommand(
            ("sprint", "review"),
            "sprint review [NAME]",
            "The sprint review summary, shown to you first, with a button to post it",
            sprint.review,
            reads=True,
        ),
        Subcommand(
            ("sprint", "plan"),
            "sprint plan [NAME]",
            "Readiness gate for the sprint being planned",
            sprint.plan,
            reads=True,
        ),
        Subcommand(
            ("sprint", "commit"),
            'sprint commit S-n … [--to current|next|NAME] [--force reason="…"]',
            "Add Ready stories to a sprint: the next one if planned, else the current (--to picks)",
            sprint.commit,
        ),
        Subcommand(
            ("sprint", "close"),
            "sprint close",
            "Close the sprint; unfinished stories carry over",
            sprint.close,
        ),
        Subcommand(
            ("away",),
            "away [YYYY-MM-DD..YYYY-MM-DD]",
            "Plan time away (no prompts or nudges); alone, list it",
            people.away,
        ),
        Subcommand(("back",), "back", "End your time away now", people.back),
        Subcommand(
            ("exp", "add"),
            "exp add S-n NAME [--metric M] [--baseline X] [--target Y] [--lower-is-better] "
            '[--hypothesis "…"] [--owner @user] [--mlflow URL] [--dashboard URL]',
            "Add an experiment to a story",
            experiments.add,
        ),
        Subcommand(
            ("exp", "list"),
            "exp list [--story S-n] [--status proposed|running|succeeded|failed|abandoned]",
            "Your team's experiments",
            experiments.list_,
            reads=True,
        ),
        Subcommand(
            ("exp", "show"),
            "exp show E-n",
            "An experiment against its baseline, with results and reviews",
            experiments.show,
            reads=True,
        ),
        Subcommand(
            ("exp", "status"),
            'exp status E-n running|succeeded|failed|abandoned [reason="…"]',
            "Move an experiment along",
            experiments.status,
        ),
        Subcommand(
            ("exp", "result"),
            "exp result E-n metric=value … [run=ID]",
            "Record metric values",
            experiments.result,
        ),
        Subcommand(
            ("exp", "review"),
            "exp review E-n [--for canary|production]",
            "Ask the approvers to review a promotion",
            experiments.review,
        ),
        Subcommand(("drift",), "drift", "Your team's open drift incidents", drift.list_, reads=True),
        Subcommand(
            ("drift", "show"),
            "drift show D-n",
            "One incident: its state, sparkline and readings",
            drift.show,
            reads=True,
        ),
        Subcommand(
            ("drift", "ack"), "drift ack D-n", "Acknowledge an incident (no more reminders)", drift.ack_cmd
        ),
        Subcommand(
            ("drift", "snooze"),
            "drift snooze D-n 1h|24h|resolved",
            "No reminders for a while, or until it resolves",
            drift.snooze_cmd,
        ),
        Subcommand(
            ("drift", "resolve"),
            'drift resolve D-n [reason="…"]',
            "Resolve an incident by hand (audited)",
            drift.resolve_cmd,
        ),
        Subcommand(
            ("drift", "story"),
            "drift story D-n",
            "Create the incident's retraining story (or show it)",
            drift.story_cmd,
        ),
        Subcommand(
            ("audit",),
            "audit S-n|E-n|R-n|D-n",
            "The decision history of an item",
            experiments.audit_history,
            reads=True,
        ),
        Subcommand(
            ("standup", "dm"), "standup dm on|off", "Also get the standup prompt as a DM", people.standup_dm
        ),
        Subcommand(
            ("whoami",),
            "whoami",
            "Your Slack user id, this channel's id and your teams",
            people.whoami,
            reads=True,
        ),
    ]


_SUBCOMMANDS: list[Subcommand] | None = None


def subcommands() -> list[Subcommand]:
    global _SUBCOMMANDS
    if _SUBCOMMANDS is None:
        _SUBCOMMANDS = _table()
    return _SUBCOMMANDS


def match(tokens: list[str]) -> tuple[Subcommand, list[str]]:
    """The subcommand the tokens name (longest match) and the remaining tokens."""
    lowered = [t.lower() for t in tokens]
    best: Subcommand | None = None
    for sub in subcommands():
        if tuple(lowered[: len(sub.words)]) == sub.words and (
            best is None or len(sub.words) > len(best.words)
        ):
            best = sub
    if best is None:
        if not tokens:
            return subcommands()[0], []
        group = [s for s in subcommands() if s.words[0] == lowered[0]]
        if group:
            options = ", ".join(" ".join(s.words) for s in group)
            typed = unescape(" ".join(tokens[:2]))
            raise Invalid(f"{typed!r} is not a command. Did you mean one of: {options}?")
        raise Invalid(f"I don't know the command {unescape(tokens[0])!r}. Type help to see them all.")
    return best, tokens[len(best.words) :]
