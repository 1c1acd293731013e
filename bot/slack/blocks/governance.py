"""Review requests, their decided form, and the decision form. Pure builders, used by the jobs that
post through the outbox and by the listeners that open the form."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.services.experiments import Evaluation
from bot.services.governance import POLICY, STATE_WORDS, Evidence
from bot.services.readiness import Checklist
from bot.slack import ids
from bot.slack.blocks import (
    actions,
    button,
    context,
    divider,
    local_time,
    mention,
    render,
    section,
    sections,
    team_time,
)
from bot.text import escape, plural

VERDICT_WORDS = {"approve": "approved", "request_changes": "requested changes", "reject": "rejected"}
VERDICT_TITLES = {"approve": "Approve", "request_changes": "Request changes", "reject": "Reject"}


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def evaluation_line(ev: Evaluation | None) -> str:
    if ev is None or ev.metric is None:
        return "_No primary metric set._"
    arrow = "higher is better" if ev.higher_is_better else "lower is better"
    line = f"*{escape(ev.metric)}* {_number(ev.value)} · baseline {_number(ev.baseline)} · target {_number(ev.target)} ({arrow})"
    if ev.delta is not None:
        line += f" · Δ {ev.delta:+.4g}"
    if ev.meets_target is not None:
        line += " · :white_check_mark: meets target" if ev.meets_target else " · :x: misses target"
    if ev.run_id:
        line += f" · run `{escape(ev.run_id)}`"
    return line


def _evidence_lines(ready: Checklist | None, done: Checklist | None) -> str:
    if ready is None or done is None:
        return "_No story linked._"
    lines = [f"Ready: {ready.answered}/{len(ready.items)} · Done: {done.answered}/{len(done.items)}"]
    for item in done.items:  # the Definition of Done of the story's type is the evidence
        value = escape(f"n/a — {item.na_reason}" if item.waived else (item.value or ""))[:300] or "_missing_"
        lines.append(f"*{escape(item.criterion.label)}:* {value}")
    return "\n".join(lines)


def _requester(actor: str) -> str:
    if actor == POLICY:
        return "the team's review policy"
    return mention(actor) if actor[:1] in ("U", "W") else escape(actor)


def _readiness_gap(ev: Evidence) -> list[Block]:
    """A review opened without a person asking (policy, MLflow) may concern a story that is not Ready:
    say so first, so nobody approves without noticing."""
    if ev.story is None or ev.ready is None or ev.ready.complete:
        return []
    lacks = ", ".join(escape(c.label) for c in ev.ready.missing)
    owner = mention(ev.story.owner) if ev.story.owner else "its owner"
    return [
        section(
            f":warning: *{ev.story.key} is not Ready.* Its Definition of Ready lacks {lacks}. "
            f"This review was opened without it; {owner} can fill it with `ready {ev.story.key}`."
        )
    ]


def _summary(ev: Evidence) -> list[Block]:
    review, exp = ev.review, ev.experiment
    head = f"*{review.key}* · {review.purpose} · {escape(review.subject)}\nRequested by {_requester(review.requested_by)}"
    blocks: list[Block] = [section(head), *_readiness_gap(ev)]
    if exp is not None:
        story = f" · story *{ev.story.key}* {escape(ev.story.title)}" if ev.story else ""
        blocks.append(
            section(
                f"*{exp.key}* {escape(exp.name)} ({exp.status}){story}\n_Hypothesis:_ {escape(exp.hypothesis) or '–'}"
            )
        )
        blocks.append(section(evaluation_line(ev.evaluation)))
    blocks += sections(_evidence_lines(ev.ready, ev.done))
    approvals = [d for d in ev.decisions if d.verdict == "approve"]
    if approvals and review.state == "pending":
        who = ", ".join(mention(d.approver) for d in approvals)
        blocks.append(context(f"{len(approvals)} of {plural(review.required_approvals, 'approval')}: {who}"))
    return blocks


def review_request(ev: Evidence) -> dict[str, Any]:
    """The request as posted to the governance channel: who may decide and by when (each reader sees
    the deadline in their own time zone), and the three decision buttons."""
    key = ev.review.key
    who = " ".join(mention(u) for u in ev.waiting_on) or "no approver (add one to the team's governance)"
    blocks = [
        *_summary(ev),
        section(f":hourglass_flowing_sand: Waiting on {who} · decision due {local_time(ev.due, ev.zone)}"),
        actions(
            button("Approve", ids.REVIEW_APPROVE, key, "primary"),
            button("Request changes", ids.REVIEW_REQUEST_CHANGES, key),
            button("Reject", ids.REVIEW_REJECT, key, "danger"),
        ),
    ]
    subject = escape(ev.review.subject[:120])
    text = (
        f"Governance review {key} for {who}: {ev.review.purpose} · {subject} · "
        f"decision due {team_time(ev.due, ev.zone)}"
    )
    return {"text": text, "blocks": render(blocks)}


def review_closed(ev: Evidence) -> dict[str, Any]:
    """The same message once decided: no buttons, the decision and every rationale shown."""
    review = ev.review
    lines = []
    for d in ev.decisions:
        why = f": “{escape(d.rationale)}”" if d.rationale else ""
        lines.append(f"{mention(d.approver)} {VERDICT_WORDS[d.verdict]}{why}")
    icon = {
        "approved": ":white_check_mark:",
        "rejected": ":no_entry:",
        "changes_requested": ":leftwards_arrow_with_hook:",
        "withdrawn": ":heavy_multiplication_x:",
    }
    if review.state == "withdrawn" and ev.experiment is not None:
        lines.append(f"{ev.experiment.key} {ev.experiment.status}: there is nothing left to promote.")
    blocks = [
        *_summary(ev),
        divider(),
        *sections(
            f"{icon.get(review.state, '')} *{review.key} {STATE_WORDS[review.state]}*\n" + "\n".join(lines)
        ),
    ]
    return {"text": f"{review.key} {STATE_WORDS[review.state]}", "blocks": render(blocks)}


def decision_modal(review_key: str, verdict: str, subject: str) -> dict[str, Any]:
    required = verdict != "approve"
    return View(
        type="modal",
        callback_id=ids.REVIEW_DECISION_MODAL,
        title=VERDICT_TITLES[verdict][:24],
        submit=VERDICT_TITLES[verdict][:24],
        close="Cancel",
        private_metadata=json.dumps({"review": review_key, "verdict": verdict}),
        blocks=[
            context(f"*{review_key}* {escape(subject)}"),
            InputBlock(
                block_id=ids.FIELD_RATIONALE,
                label="Rationale",
                optional=not required,
                hint="Required: say what must change or why."
                if required
                else "Optional, shown in the decision log.",
                element=PlainTextInputElement(action_id=ids.INPUT, multiline=True, max_length=3000),
            ),
        ],
    ).to_dict()
