"""An item's decision history as people read it: each audit row as a sentence (what was done, to which
criterion, why), at the time of the item's team. Pure: the command gives the rows, the team's zone and
the labels of the story's criteria."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block

from bot.services.readiness import KIND_NAMES
from bot.slack.blocks import context, mention, section, sections
from bot.store.models import AuditEvent
from bot.text import escape, plural

MAX_ROWS = 40  # the newest rows shown; `cadence audit export` has them all
MAX_QUOTE = 300  # characters of a reason or rationale shown

# criterion labels by checklist kind ("ready", "done") and key, for the story the log is about
Labels = Mapping[str, Mapping[str, str]]
Phrase = Callable[[dict[str, Any], Labels], str]


def _quote(value: Any) -> str:
    text = str(value).strip()
    if len(text) > MAX_QUOTE:
        text = text[: MAX_QUOTE - 1] + "…"
    return f"“{escape(text)}”"


def _why(payload: dict[str, Any]) -> str:
    """': “the reason”' when the row has a reason or rationale, else nothing."""
    for key in ("reason", "rationale"):
        if str(payload.get(key) or "").strip():
            return f": {_quote(payload[key])}"
    return ""


def _label(labels: Labels, kind: str, key: Any) -> str:
    """A criterion as configured for the story's type; one no longer configured reads as its key."""
    return escape(labels.get(kind, {}).get(str(key)) or str(key).replace("_", " "))


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _waived(kind: str) -> Phrase:
    def phrase(p: dict[str, Any], labels: Labels) -> str:
        return f"waived {_label(labels, kind, p.get('criterion'))} ({KIND_NAMES[kind]}){_why(p)}"

    return phrase


def _committed(p: dict[str, Any]) -> str:
    text = f"committed it to sprint {escape(str(p.get('sprint', '')))}"
    if p.get("from"):
        text += f" (moved from {escape(str(p['from']))})"
    if p.get("scope_added"):
        text += " as scope added after the sprint started"
    return text


def _commit(p: dict[str, Any], labels: Labels) -> str:
    return _committed(p)


def _force_commit(p: dict[str, Any], labels: Labels) -> str:
    lacked = ", ".join(_label(labels, "ready", k) for k in p.get("missing") or [])
    gap = f" (it lacked {lacked})" if lacked else ""
    return f"{_committed(p)} although not Ready{gap}{_why(p)}"


def _dropped(p: dict[str, Any], labels: Labels) -> str:
    return f"dropped it from sprint {escape(str(p.get('sprint', '')))} back to the backlog"


def _started(p: dict[str, Any], labels: Labels) -> str:
    return "unblocked it: back in progress" if p.get("from") == "blocked" else "started work on it"


def _experiment_added(p: dict[str, Any], labels: Labels) -> str:
    text = f"added it to {escape(str(p.get('story', '')))} as {_quote(p.get('name', ''))}"
    if p.get("metric"):
        text += (
            f" ({escape(str(p['metric']))}: baseline {_number(p.get('baseline'))}, "
            f"target {_number(p.get('target'))})"
        )
    return text


def _results(p: dict[str, Any], labels: Labels) -> str:
    metrics = p.get("metrics") or {}
    values = ", ".join(f"{escape(str(k))}={_number(v)}" for k, v in sorted(metrics.items()))
    run = f" (run {escape(str(p['run']))})" if p.get("run") else ""
    return f"recorded {values}{run}"


def _status(p: dict[str, Any], labels: Labels) -> str:
    return f"moved it from {escape(str(p.get('from', '')))} to {escape(str(p.get('to', '')))}{_why(p)}"


def _requested(p: dict[str, Any], labels: Labels) -> str:
    what = f"a {escape(str(p.get('purpose', '')))} review of {escape(str(p.get('subject', '')))}"
    if p.get("source") == "policy":
        became = ""
        if p.get("status"):
            became = f" when {escape(str(p.get('experiment') or 'it'))} became {escape(str(p['status']))}"
        by = f" (moved by {_who(str(p['triggered_by']))})" if p.get("triggered_by") else ""
        return f"opened {what}{became}{by}"
    if p.get("source") == "mlflow":
        return f"opened {what} from MLflow"
    return f"asked for {what}"


def _verdict(word: str) -> Phrase:
    def phrase(p: dict[str, Any], labels: Labels) -> str:
        count = ""
        if word == "approved" and int(p.get("required") or 1) > 1:
            count = f" ({p.get('approvals')} of {plural(int(p['required']), 'approval')})"
        return f"{word}{count}{_why(p)}"

    return phrase


PHRASES: dict[str, Phrase] = {
    "ready.waive": _waived("ready"),
    "done.waive": _waived("done"),
    "story.done": lambda p, labels: "closed it: the Definition of Done is met",
    "story.start": _started,
    "story.block": lambda p, labels: f"blocked it{_why(p)}",
    "story.archive": lambda p, labels: "archived it: nobody will do it",
    "sprint.commit": _commit,
    "sprint.force_commit": _force_commit,
    "sprint.drop": _dropped,
    "experiment.add": _experiment_added,
    "experiment.results": _results,
    "experiment.status": _status,
    "review.request": _requested,
    "review.approve": _verdict("approved"),
    "review.request_changes": _verdict("requested changes"),
    "review.reject": _verdict("rejected"),
}

# past tenses of the verbs actions are named with, for actions without a phrase of their own
_PAST = {"add": "added", "drop": "dropped", "remove": "removed", "close": "closed", "reopen": "reopened"}


def _generic(action: str, p: dict[str, Any], labels: Labels) -> str:
    """An action without a phrase of its own ("story.drop"): its verb, then what its payload says."""
    verb = action.rsplit(".", 1)[-1]
    parts = []
    if p.get("from") and p.get("to"):
        parts.append(f"from {escape(str(p['from']))} to {escape(str(p['to']))}")
    if p.get("criterion"):
        kind = action.split(".", 1)[0]
        parts.append(_label(labels, kind if kind in KIND_NAMES else "ready", p["criterion"]))
    if p.get("sprint"):
        parts.append(f"sprint {escape(str(p['sprint']))}")
    text = escape(_PAST.get(verb, verb.replace("_", " ")))
    if parts:
        text += " · " + " · ".join(parts)
    return text + _why(p)


def describe(action: str, payload: dict[str, Any], labels: Labels | None = None) -> str:
    """One audit row as a phrase a person reads after who did it (mrkdwn, everything typed escaped)."""
    labels = labels or {}
    phrase = PHRASES.get(action)
    return phrase(payload, labels) if phrase else _generic(action, payload, labels)


def _who(actor: str) -> str:
    if actor == "policy":
        return "the team's review policy"
    if actor == "mlflow":
        return "MLflow"
    return mention(actor) if actor[:1] in ("U", "W") and actor[1:].isalnum() else escape(actor)


def audit_log(key: str, rows: list[AuditEvent], *, zone: ZoneInfo, labels: Labels) -> list[Block]:
    """The newest MAX_ROWS rows of an item, one line each, at the time of the item's team."""
    lines = []
    for row in rows[-MAX_ROWS:]:
        when = row.at.astimezone(zone)
        what = describe(row.action, json.loads(row.payload), labels)
        lines.append(f"`#{row.seq}` {when:%Y-%m-%d %H:%M} · {_who(row.actor)} · {what}")
    blocks: list[Block] = [
        section(f"*Audit log · {key}* — {plural(len(rows), 'decision')} · times in {zone.key}"),
        *sections("\n".join(lines)),
    ]
    if len(rows) > MAX_ROWS:
        blocks.append(context(f"Showing the newest {MAX_ROWS}; `cadence audit export` has all {len(rows)}."))
    blocks.append(context("Every row is hash-chained; operators can prove it with `cadence audit verify`."))
    return blocks
