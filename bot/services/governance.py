"""Governance reviews (R-n): who may decide, how many approvals close one, and the evidence shown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import AppConfig, Governance, Team
from bot.services import audit, events, experiments, readiness
from bot.services.errors import Conflict, Forbidden, Invalid, NotFound
from bot.services.experiments import Evaluation
from bot.services.readiness import Checklist
from bot.services.teams import admits
from bot.store.models import Experiment, Review, ReviewDecision, Story
from bot.store.queries import insert_ignore, next_number
from bot.store.types import utcnow
from bot.text import plural

PURPOSES = ("canary", "production")
POLICY = "policy"  # the requester of reviews a team's review_on policy opens
# Reviews opened by something that already happened (a status change under the team's review_on
# policy, a model version given an alias in MLflow) rather than asked for by a person. See
# request_review for why these are not held back by the Definition of Ready.
AUTOMATIC_SOURCES = ("policy", "mlflow")
VERDICTS = ("approve", "request_changes", "reject")
CLOSING = {"reject": "rejected", "request_changes": "changes_requested"}
STATE_WORDS = {
    "pending": "pending",
    "approved": "approved",
    "changes_requested": "sent back for changes",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
}
MAX_RATIONALE = 3000
_KEY = re.compile(r"^[Rr]-?(\d{1,9})$")


def parse_review_key(text: str) -> int:
    match = _KEY.match(text.strip())
    if not match:
        raise Invalid(f"{text!r} is not a review id; review ids look like R-4.")
    return int(match.group(1))


def governance_of(config: AppConfig, team_name: str) -> tuple[Team, Governance]:
    team = config.team(team_name)
    if team is None or team.governance is None:
        raise Invalid(f"Team {team_name} has no governance channel and approvers configured.")
    return team, team.governance


async def request_review(
    session: AsyncSession,
    *,
    config: AppConfig,
    team: str,
    purpose: str,
    actor: str,
    source: str,
    experiment: Experiment | None = None,
    subject: str | None = None,
    source_key: str | None = None,
    now: datetime | None = None,
    audit_note: dict[str, str] | None = None,
) -> tuple[Review, bool]:
    """Open a review; (the review, True) — or (the open one, False) when the same request is pending."""
    if purpose not in PURPOSES:
        raise Invalid(f"{purpose!r} is not a review purpose; use {' or '.join(PURPOSES)}.", field="purpose")
    found, governance = governance_of(config, team)
    if not (admits(found, actor) or actor in governance.approvers):
        raise Forbidden(f"Only members and approvers of team {team} can ask for its reviews.")
    others = set(governance.approvers) - {actor}
    if len(others) < governance.required_approvals:
        raise Conflict(
            f"This review needs {plural(governance.required_approvals, 'approval')} from someone other than "
            f"the requester, and team {team} has {plural(len(others), 'other approver')}; add approvers to "
            "its governance config."
        )
    if source_key is not None:
        same = (await session.exec(select(Review).where(Review.source_key == source_key))).first()
        if same is not None:
            return same, False
    if experiment is not None:
        if experiment.status in ("failed", "abandoned"):
            raise Conflict(f"{experiment.key} {experiment.status}; there is nothing to promote.")
        open_one = (
            await session.exec(
                select(Review).where(
                    Review.experiment_id == experiment.id,
                    Review.purpose == purpose,
                    Review.state == "pending",
                )
            )
        ).first()
        if open_one is not None:
            return open_one, False
        if source not in AUTOMATIC_SOURCES:
            await _require_ready(session, config, experiment)
    # An automatic review is opened even when its story is not Ready. Refusing it would either fail
    # the status change that caused it (an API call or an MLflow sync that would then retry forever)
    # or leave governance without a review of a promotion that happened; so it opens, and its request
    # shows the gap in the Definition of Ready at the top (see slack/blocks/governance.py).
    review = Review(
        number=await next_number(session, "R"),
        team=team,
        experiment_id=experiment.id if experiment else None,
        purpose=purpose,
        subject=(subject or (f"{experiment.key} {experiment.name}" if experiment else "a promotion"))[:300],
        requested_by=actor,
        source=source,
        source_key=source_key,
        required_approvals=governance.required_approvals,
        created_at=now or utcnow(),
    )
    session.add(review)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="review.request",
        subject=review.key,
        payload={
            "purpose": purpose,
            "subject": review.subject,
            "source": source,
            "experiment": experiment.key if experiment else None,
            **(audit_note or {}),
        },
        at=review.created_at,
    )
    events.record(session, events.ReviewRequested(review.id))  # type: ignore[arg-type]
    return review, True


async def _require_ready(session: AsyncSession, config: AppConfig, experiment: Experiment) -> None:
    """A person may ask for a review only once the experiment's story meets its Definition of Ready."""
    story = await session.get(Story, experiment.story_id)
    if story is None:
        raise NotFound(f"The story of {experiment.key} no longer exists.")
    ready = await readiness.checklist(session, story, "ready", config)
    if not ready.complete:
        lacks = ", ".join(c.label for c in ready.missing)
        raise Conflict(
            f"{experiment.key} cannot go to review yet: its story {story.key} is not Ready. "
            f"Its Definition of Ready lacks {lacks}. Fill it with `ready {story.key}` "
            f'(or `ready {story.key} key=n/a reason="…"` where one does not apply), then ask again.',
            field="story",
        )


def deadline(config: AppConfig, review: Review) -> datetime:
    """When the team expects a decision: the request plus its governance's review_sla_hours."""
    _, gov = governance_of(config, review.team)
    return review.created_at + timedelta(hours=gov.review_sla_hours)


def waiting_on(config: AppConfig, review: Review, decided: list[ReviewDecision]) -> list[str]:
    """The approvers who may still decide a pending review: neither the requester nor anyone who has."""
    _, gov = governance_of(config, review.team)
    done = {d.approver for d in decided}
    return [u for u in dict.fromkeys(gov.approvers) if u != review.requested_by and u not in done]


async def get_review(session: AsyncSession, key: str, *, lock: bool = False) -> Review:
    stmt = select(Review).where(Review.number == parse_review_key(key))
    if lock:
        stmt = stmt.with_for_update()  # PostgreSQL: decisions on one review queue up; SQLite locks at BEGIN
    found = (await session.exec(stmt)).first()
    if found is None:
        raise NotFound(f"There is no review {key.strip().upper()}.")
    return found


async def check_can_decide(session: AsyncSession, config: AppConfig, review: Review, user: str) -> None:
    """Refuse anyone who may not decide this review, with the reason; checked before a form opens
    and again when it is submitted."""
    _, governance = governance_of(config, review.team)
    if review.state != "pending":
        raise Conflict(f"{review.key} is closed: it was {STATE_WORDS[review.state]}.")
    if user not in governance.approvers:
        raise Forbidden(f"Only the approvers of team {review.team} can decide {review.key}.")
    if user == review.requested_by:
        raise Forbidden(f"You requested {review.key}, so another approver has to decide it.")
    earlier = (
        await session.exec(
            select(ReviewDecision).where(
                ReviewDecision.review_id == review.id, ReviewDecision.approver == user
            )
        )
    ).first()
    if earlier is not None:
        raise Conflict(f"You have already decided {review.key}.")


@dataclass(frozen=True)
class Decision:
    review: Review
    decision: ReviewDecision
    approvals: int
    closed_now: bool


async def decide(
    session: AsyncSession,
    *,
    config: AppConfig,
    review_key: str,
    approver: str,
    verdict: str,
    rationale: str = "",
    now: datetime | None = None,
) -> Decision:
    """Record one approver's verdict. One decision per approver, however often or concurrently they
    click; a reject or a request for changes closes the review, enough approvals approve it."""
    if verdict not in VERDICTS:
        raise Invalid(f"{verdict!r} is not a verdict; use {', '.join(VERDICTS)}.", field="verdict")
    rationale = rationale.strip()
    if verdict != "approve" and not rationale:
        raise Invalid("Say why: a rationale is required to reject or to request changes.", field="rationale")
    if len(rationale) > MAX_RATIONALE:
        raise Invalid(f"Keep the rationale to {MAX_RATIONALE} characters.", field="rationale")
    review = await get_review(session, review_key, lock=True)
    await check_can_decide(session, config, review, approver)
    now = now or utcnow()
    recorded = await insert_ignore(
        session,
        ReviewDecision,
        {
            "review_id": review.id,
            "approver": approver,
            "verdict": verdict,
            "rationale": rationale,
            "decided_at": now,
        },
    )
    if not recorded:
        raise Conflict(f"You have already decided {review.key}.")
    approvals = int(
        (
            await session.exec(
                select(func.count())
                .select_from(ReviewDecision)
                .where(ReviewDecision.review_id == review.id, ReviewDecision.verdict == "approve")
            )
        ).one()
    )
    new_state = CLOSING.get(verdict) or ("approved" if approvals >= review.required_approvals else None)
    closed_now = False
    if new_state is not None:
        moved = await session.exec(
            update(Review)
            .where(col(Review.id) == review.id, col(Review.state) == "pending")
            .values(state=new_state, decided_at=now)
        )
        closed_now = moved.rowcount == 1
        if not closed_now:
            raise Conflict(f"{review.key} was closed a moment ago.")
        await session.refresh(review)
    if closed_now and review.state == "approved" and review.experiment_id is not None:
        experiment = await session.get(Experiment, review.experiment_id)
        if experiment is not None:
            experiment.stage, experiment.updated_at = review.purpose, now
            session.add(experiment)
    decision = (
        await session.exec(
            select(ReviewDecision).where(
                ReviewDecision.review_id == review.id, ReviewDecision.approver == approver
            )
        )
    ).one()
    await audit.record(
        session,
        actor=approver,
        action=f"review.{verdict}",
        subject=review.key,
        payload={
            "rationale": rationale,
            "state": review.state,
            "approvals": approvals,
            "required": review.required_approvals,
            "purpose": review.purpose,
            "subject": review.subject,
        },
        at=now,
    )
    await session.flush()
    events.record(session, events.ReviewDecided(review.id, approver, closed_now))  # type: ignore[arg-type]
    return Decision(review, decision, approvals, closed_now)


async def reviews_for(session: AsyncSession, experiment: Experiment) -> list[Review]:
    rows = await session.exec(
        select(Review).where(Review.experiment_id == experiment.id).order_by(col(Review.number))
    )
    return list(rows.all())


async def decisions(session: AsyncSession, review: Review) -> list[ReviewDecision]:
    rows = await session.exec(
        select(ReviewDecision)
        .where(ReviewDecision.review_id == review.id)
        .order_by(col(ReviewDecision.decided_at))
    )
    return list(rows.all())


@dataclass(frozen=True)
class Evidence:
    """What a reviewer sees: the experiment against its baseline and the story's readiness and done,
    who may still decide, and by when (in the team's time zone)."""

    review: Review
    experiment: Experiment | None
    story: Story | None
    evaluation: Evaluation | None
    ready: Checklist | None
    done: Checklist | None
    decisions: list[ReviewDecision]
    waiting_on: list[str]
    due: datetime
    zone: ZoneInfo


async def evidence(session: AsyncSession, *, config: AppConfig, review: Review) -> Evidence:
    experiment = await session.get(Experiment, review.experiment_id) if review.experiment_id else None
    story = await session.get(Story, experiment.story_id) if experiment else None
    evaluation = evaluate = None
    if experiment is not None:
        evaluate = await experiments.results(session, experiment)
        evaluation = experiments.evaluate(experiment, evaluate)
    ready = await readiness.checklist(session, story, "ready", config) if story else None
    done = await readiness.checklist(session, story, "done", config) if story else None
    decided = await decisions(session, review)
    team, _ = governance_of(config, review.team)
    return Evidence(
        review,
        experiment,
        story,
        evaluation,
        ready,
        done,
        decided,
        waiting_on(config, review, decided),
        deadline(config, review),
        config.team_timezone(team),
    )


async def awaiting(session: AsyncSession, *, config: AppConfig, user: str) -> list[Review]:
    """Pending reviews this person may decide and has not decided yet (for their App Home)."""
    teams = [t.name for t in config.teams if t.governance and user in t.governance.approvers]
    if not teams:
        return []
    decided = select(ReviewDecision.review_id).where(ReviewDecision.approver == user)
    rows = await session.exec(
        select(Review)
        .where(
            Review.state == "pending",
            col(Review.team).in_(teams),
            Review.requested_by != user,
            col(Review.id).not_in(decided),
        )
        .order_by(col(Review.number))
    )
    return list(rows.all())


async def overdue(session: AsyncSession, *, config: AppConfig, now: datetime) -> list[Review]:
    """Pending reviews past their team's SLA that have not been reminded yet."""
    rows = (
        await session.exec(select(Review).where(Review.state == "pending", col(Review.reminded_at).is_(None)))
    ).all()
    late = []
    for review in rows:
        team = config.team(review.team)
        if (
            team
            and team.governance
            and now - review.created_at >= timedelta(hours=team.governance.review_sla_hours)
        ):
            late.append(review)
    return late


async def mark_reminded(session: AsyncSession, review: Review, now: datetime) -> bool:
    """Claim the one reminder of a review; False if another process claimed it first."""
    moved = await session.exec(
        update(Review)
        .where(col(Review.id) == review.id, col(Review.reminded_at).is_(None), col(Review.state) == "pending")
        .values(reminded_at=now)
    )
    if moved.rowcount != 1:
        return False
    events.record(session, events.ReviewOverdue(review.id))  # type: ignore[arg-type]
    return True


async def review_for_status(
    session: AsyncSession,
    *,
    config: AppConfig,
    experiment: Experiment,
    actor: str,
    now: datetime | None = None,
) -> Review | None:
    """The review a team's policy opens when an experiment reaches a status (review_on); None if none."""
    team = config.team(experiment.team)
    if team is None or team.governance is None:
        return None
    purpose = team.governance.review_on.get(experiment.status)  # type: ignore[call-overload]
    if purpose is None:
        return None
    review, created = await request_review(
        session,
        config=config,
        team=experiment.team,
        purpose=purpose,
        actor=POLICY,  # the team's policy asks; whoever moved the status is named in the audit row
        source="policy",
        experiment=experiment,
        source_key=f"policy:{experiment.key}:{experiment.status}:{purpose}",
        now=now,
        audit_note={"triggered_by": actor, "status": experiment.status},
    )
    return review if created else None


async def report_status(
    session: AsyncSession,
    *,
    config: AppConfig,
    experiment: Experiment,
    status: str,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> tuple[bool, Review | None]:
    """Move an experiment's status (from Slack, the API or MLflow alike) and open the review the
    team's policy asks for at that status: (whether it moved, the review it opened, if any)."""
    moved = await experiments.set_status(
        session, config=config, experiment=experiment, status=status, actor=actor, reason=reason
    )
    if not moved:
        return False, None
    if status in ("failed", "abandoned"):
        await withdraw_reviews(session, experiment=experiment, actor=actor, now=now)
    return True, await review_for_status(session, config=config, experiment=experiment, actor=actor, now=now)


async def withdraw_reviews(
    session: AsyncSession, *, experiment: Experiment, actor: str, now: datetime | None = None
) -> list[Review]:
    """Close every pending review of an experiment that failed or was abandoned: there is nothing left to
    promote, so nobody should be asked to decide. Each is audited and its request edited (buttons gone)."""
    now = now or utcnow()
    pending = (
        await session.exec(
            select(Review).where(Review.experiment_id == experiment.id, Review.state == "pending")
        )
    ).all()
    withdrawn = []
    for review in pending:
        moved = await session.exec(
            update(Review)
            .where(col(Review.id) == review.id, col(Review.state) == "pending")
            .values(state="withdrawn", decided_at=now)
        )
        if moved.rowcount != 1:  # decided a moment ago: that decision stands
            continue
        await session.refresh(review)
        await audit.record(
            session,
            actor=actor,
            action="review.withdraw",
            subject=review.key,
            payload={"experiment": experiment.key, "status": experiment.status},
            at=now,
        )
        events.record(session, events.ReviewWithdrawn(review.id, actor))  # type: ignore[arg-type]
        withdrawn.append(review)
    return withdrawn
