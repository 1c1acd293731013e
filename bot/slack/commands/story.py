"""`story …` subcommands."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from bot.services import readiness, sprints, stories
from bot.services.errors import Conflict, Invalid
from bot.slack.blocks import message, section
from bot.slack.blocks.checklist import checklist_blocks, gap_count
from bot.slack.blocks.modals import story_modal
from bot.slack.blocks.sprints import sprint_label
from bot.slack.blocks.stories import PAGE_SIZE, story_card, story_list
from bot.slack.commands import Reply
from bot.slack.context import Invocation
from bot.slack.parsing import parse_args, parse_int, parse_user, unescape
from bot.store.models import Sprint, Story
from bot.text import escape


def _one_key(tokens: list[str], usage_hint: str) -> str:
    args = parse_args(tokens)
    if len(args.positionals) != 1:
        raise Invalid(f"Name one story, e.g. `{usage_hint}`.")
    return args.positionals[0]


def split_force(tokens: list[str]) -> tuple[list[str], str | None]:
    """Take `--force reason="…"` out of a command that also has free text (a title may contain `=`)."""
    if "--force" not in tokens:
        return tokens, None
    rest = [t for t in tokens if t != "--force"]
    reasons = [t for t in rest if t.startswith("reason=")]
    if not reasons:
        raise Invalid('--force needs a reason, e.g. --force reason="agreed with the PO".', field="reason")
    reason = unescape(reasons[0].removeprefix("reason="))
    if not reason.strip():
        raise Invalid('--force needs a reason, e.g. --force reason="agreed with the PO".', field="reason")
    return [t for t in rest if t is not reasons[0]], reason


async def open_story_form(inv: Invocation, story_key: str | None = None) -> None:
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, story_key) if story_key else None
        if story is not None and story.closed:
            raise Conflict(f"{story.key} is {story.status} and can no longer be edited.")
        # A story's form offers its own team's sprints (not the team of the channel it is edited from).
        team = (inv.config.team(story.team) if story else None) or inv.team()
        open_sprints = await sprints.open_sprints(session, team)
    inv.open_modal(
        story_modal(
            story_types=inv.config.story_types,
            sprints=open_sprints,
            story=story,
            default_type=stories.default_type(inv.config),
            channel=inv.channel_id,
            team=team.name,
            response_url=inv.response_url,
            may_force=not team.leads or inv.user_id in team.leads,
        )
    )


async def add(inv: Invocation, tokens: list[str]) -> Reply:
    if not tokens:
        await open_story_form(inv)
        return None
    tokens, force_reason = split_force(tokens)
    args = parse_args(tokens, options=("--type", "--owner", "--points", "--sprint"))
    if force_reason is not None and not args.option("--sprint"):
        raise Invalid("--force only matters with --sprint: it lets a not-Ready story into the sprint.")
    owner = parse_user(args.option("--owner") or "") if args.option("--owner") else None
    points = (
        parse_int(args.option("--points") or "", option="--points") if "--points" in args.options else None
    )
    async with inv.deps.transaction() as session:
        team = inv.team()
        sprint = None
        if args.option("--sprint"):
            sprint = await sprints.resolve_sprint(session, team=team, ref=args.option("--sprint") or "")
        added = await stories.add_story(
            session,
            config=inv.config,
            team=team,
            title=" ".join(args.positionals),
            actor=inv.user_id,
            story_type=args.option("--type"),
            owner=owner,
            points=points,
            sprint=sprint,
            force_reason=force_reason,
            today=inv.today(team),
        )
        story = added.story
        ready = await readiness.checklist(session, story, "ready", inv.config)
    text = added_text(added, today=inv.today(team))
    where = f"sprint {escape(added.sprint.name)}" if added.sprint else "the backlog"
    return message(
        f"Added {story.key} to {where}.",
        [section(text), *checklist_blocks(ready, title="Definition of Ready")],
    )


def added_text(added: stories.Added, *, today: date) -> str:
    """Where a new story went, and, if the gate kept it out of the sprint asked for, why."""
    story = added.story
    where = sprint_label(added.sprint, today) if added.sprint else "the backlog"
    text = f":white_check_mark: Added *{story.key}* {escape(story.title)} to {where}."
    if added.refused is not None:
        text += f"\n:no_entry: It is not in the sprint you asked for: {escape(added.refused.message)}"
    return text


async def list_(inv: Invocation, tokens: list[str], page: int = 1) -> Reply:
    args = parse_args(tokens, options=("--sprint",), flags=("--mine", "--not-ready", "--all"))
    if args.positionals:
        raise Invalid(f"Unexpected {args.positionals[0]!r}; story list takes only options.")
    team = inv.team()
    inv.may_read(team, "its stories")
    ref = args.option("--sprint")
    backlog_only = bool(ref and ref.lower() == "backlog")
    owner = inv.user_id if args.flag("--mine") else None

    def read(session: Session) -> tuple[Sprint | None, stories.StoryPage]:
        sprint = sprints.find_sprint(session, team=team, ref=ref) if ref and not backlog_only else None
        filters = stories.StoryFilter(
            owner=owner,
            sprint=sprint,
            backlog_only=backlog_only,
            include_done=args.flag("--all"),
            not_ready=args.flag("--not-ready"),
        )
        found = stories.story_page(
            session, config=inv.config, team=team, filters=filters, page=page, page_size=PAGE_SIZE
        )
        return sprint, found

    def render(found: tuple[Sprint | None, stories.StoryPage]) -> dict[str, Any]:
        sprint, result = found
        scope = [f"team {team.name}"]
        if args.flag("--mine"):
            scope.append("mine")
        if ref:
            scope.append(f"sprint {sprint.name}" if sprint else "backlog")
        if args.flag("--not-ready"):
            scope.append("not Ready")
        title = "Stories · " + " · ".join(scope)
        return message(escape(title), story_list(result, title=title, filters={"tokens": tokens}))

    # everything the answer shows besides the team's rows: the words, the page, and who asked for --mine
    return await inv.deps.answer(team.name, ("story list", tuple(tokens), page, owner), read, render)


async def show(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story show S-12")
    async with inv.deps.reading() as session:
        story = await stories.get_story(session, key)
        inv.may_read(story.team, "its stories")
        ready = await readiness.checklist(session, story, "ready", inv.config)
        done = await readiness.checklist(session, story, "done", inv.config)
        sprint_name = await stories.sprint_name(session, story)
    return message(
        f"{story.key} {escape(story.title)}",
        story_card(story, sprint_name=sprint_name, ready=ready, done=done),
    )


async def edit(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story edit S-12")
    await open_story_form(inv, key)
    return None


async def assign(inv: Invocation, tokens: list[str]) -> Reply:
    args = parse_args(tokens)
    if len(args.positionals) != 2:
        raise Invalid("Name a story and a person, e.g. `story assign S-12 @alice`.")
    owner = parse_user(args.positionals[1])
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, args.positionals[0])
        await stories.assign_story(session, config=inv.config, story=story, owner=owner, actor=inv.user_id)
    return message(
        f"{story.key} is now owned by <@{owner}>.",
        [section(f":bust_in_silhouette: *{story.key}* {escape(story.title)} is now owned by <@{owner}>.")],
    )


async def done(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story done S-12")
    return await finish(inv, key)


async def finish(inv: Invocation, key: str) -> Reply:
    """Shared by `story done` and the Mark done button: refuses with the missing Definition of Done."""
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, key)
        try:
            await stories.complete_story(session, config=inv.config, story=story, actor=inv.user_id)
        except stories.NotDone as refused:
            # The service's sentence names every missing criterion; the checklist below names each once.
            gap = gap_count(refused.checklist)
            return message(
                f"{story.key} does not meet the Definition of Done yet: it lacks {gap}.",
                checklist_blocks(
                    refused.checklist,
                    title="Definition of Done",
                    summary=f":no_entry: *{story.key}* cannot be closed yet: it lacks {gap} (marked :x: below).",
                ),
            )
    return message(
        f"{story.key} is done.",
        [section(f":tada: *{story.key}* {escape(story.title)} is done. Recorded in the audit log.")],
    )


def _key_and_reason(tokens: list[str], usage_hint: str) -> tuple[str, str | None]:
    args = parse_args(tokens, pairs=True)
    unknown = sorted(set(args.pairs) - {"reason"})
    if unknown:
        raise Invalid(f'Unexpected {unknown[0]}=…; only reason="…" goes here.')
    if len(args.positionals) != 1:
        raise Invalid(f"Name one story, e.g. `{usage_hint}`.")
    return args.positionals[0], args.pairs.get("reason")  # parse_args unescaped it already (once)


def _moved(story: Story, head: str) -> Reply:
    text = f"{head} *{story.key}* {escape(story.title)} is {stories.STATUS_WORDS[story.status]}."
    if story.status == "blocked" and story.blocked_reason:
        text += f"\n_Waiting for:_ {escape(story.blocked_reason)}"
    return message(f"{story.key} is {stories.STATUS_WORDS[story.status]}.", [section(text)])


async def start(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story start S-12")
    async with inv.deps.transaction() as session:
        story = await stories.start_story(
            session, config=inv.config, story=await stories.get_story(session, key), actor=inv.user_id
        )
    return _moved(story, ":arrow_forward:")


async def block(inv: Invocation, tokens: list[str]) -> Reply:
    key, reason = _key_and_reason(tokens, 'story block S-12 reason="waiting for GPU quota"')
    if reason is None:
        raise Invalid(
            'Say what it is waiting for, e.g. `story block S-12 reason="GPU quota"`.', field="reason"
        )
    async with inv.deps.transaction() as session:
        story = await stories.block_story(
            session,
            config=inv.config,
            story=await stories.get_story(session, key),
            actor=inv.user_id,
            reason=reason,
        )
    return _moved(story, ":octagonal_sign:")


async def unblock(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story unblock S-12")
    async with inv.deps.transaction() as session:
        story = await stories.unblock_story(
            session, config=inv.config, story=await stories.get_story(session, key), actor=inv.user_id
        )
    return _moved(story, ":arrow_forward:")


async def drop(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story drop S-12")
    async with inv.deps.transaction() as session:
        story = await stories.get_story(session, key)
        left = await stories.drop_story(session, config=inv.config, story=story, actor=inv.user_id)
    text = f":leftwards_arrow_with_hook: Dropped *{story.key}* {escape(story.title)} from sprint *{escape(left.name)}*; it is back in the backlog."
    return message(f"Dropped {story.key} from {escape(left.name)}.", [section(text)])


async def archive(inv: Invocation, tokens: list[str]) -> Reply:
    key = _one_key(tokens, "story archive S-12")
    async with inv.deps.transaction() as session:
        story = await stories.archive_story(
            session, config=inv.config, story=await stories.get_story(session, key), actor=inv.user_id
        )
    text = (
        f":file_cabinet: Archived *{story.key}* {escape(story.title)}: off every list and board, "
        f"kept in the audit log (`audit {story.key}`)."
    )
    return message(f"Archived {story.key}.", [section(text)])
