"""`ready S-n` and `dod S-n`: show a checklist, fill it inline, or open its form."""

from __future__ import annotations

from bot.services import readiness, stories
from bot.services.errors import Invalid
from bot.services.readiness import KIND_NAMES
from bot.slack.blocks import message, section
from bot.slack.blocks.checklist import checklist_blocks
from bot.slack.blocks.modals import criteria_modal
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args, parse_waiver
from bot.text import plural


def split_answers(pairs: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """key=value pairs into answers and waivers. `key=n/a reason="…"` and `key="n/a: …"` both waive."""
    pairs = dict(pairs)
    reason = pairs.pop("reason", None)
    bare = [k for k, v in pairs.items() if parse_waiver(v) == ""]
    if reason is not None and not bare:
        raise Invalid(
            'reason="…" goes with a criterion marked n/a, e.g. data_contract=n/a reason="internal data".'
        )
    answers, waivers = {}, {}
    for key, value in pairs.items():
        inline = parse_waiver(value)
        if inline is None:
            answers[key] = value
        else:
            waivers[key] = inline or reason or ""
    return answers, waivers


async def ready(inv: Invocation, tokens: list[str]) -> Reply:
    return await _checklist(inv, tokens, "ready")


async def dod(inv: Invocation, tokens: list[str]) -> Reply:
    return await _checklist(inv, tokens, "done")


async def _checklist(inv: Invocation, tokens: list[str], kind: str) -> Reply:
    args = parse_args(tokens, pairs=True)
    word = "ready" if kind == "ready" else "dod"
    if not args.positionals:
        raise Invalid(f"Name a story, e.g. `{word} S-12`.")
    if len(args.positionals) > 1:
        raise Invalid(f"Unexpected {args.positionals[1]!r}: write criteria as key=value.")
    key = args.positionals[0]
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, key)
        if args.pairs:
            answers, waivers = split_answers(args.pairs)
            checklist = await readiness.record_answers(
                session,
                story=story,
                kind=kind,
                config=inv.config,
                actor=inv.user_id,
                answers=answers,
                waivers=waivers,
            )
            recorded = plural(len(answers) + len(waivers), "answer")
            return message(
                f"Recorded {recorded} for {story.key}",
                [
                    section(f":pencil: Recorded {recorded} for *{story.key}*."),
                    *checklist_blocks(checklist, title=f"{KIND_NAMES[kind]} · {story.title}"),
                ],
            )
        checklist = await readiness.checklist(session, story, kind, inv.config)
    return message(
        f"{KIND_NAMES[kind]} for {story.key}",
        checklist_blocks(checklist, title=f"{KIND_NAMES[kind]} · {story.title}", story_open=not story.closed),
    )


async def open_criteria_form(inv: Invocation, story_key: str, kind: str) -> None:
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, story_key)
        if story.closed:
            raise Invalid(f"{story.key} is already {story.status}; its checklists are closed.")
        checklist = await readiness.checklist(session, story, kind, inv.config)
    inv.open_modal(
        criteria_modal(
            checklist, story_title=story.title, channel=inv.channel_id, response_url=inv.response_url
        )
    )
