"""What an operator watches at /metrics, through prometheus-client, in a registry of the app's own (tests
and the sandbox build many apps in one process; each counts for itself)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# Slack wants an answer within 3 s; most answers take milliseconds
ACK_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# a message goes within about a second when Slack is well; retries back off for up to 15 minutes
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# how late the clock starts a job after the time it was scheduled for
LAG_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


@dataclass
class Snapshot:
    """What is read from the database and the worker just before a scrape."""

    outbox: dict[str, int] = field(default_factory=dict)
    outbox_oldest_seconds: float = 0.0
    open_incidents: dict[str, int] = field(default_factory=dict)
    readings: dict[str, int] = field(default_factory=dict)


class _Read(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        snap = self.metrics.snapshot
        outbox = GaugeMetricFamily("cadence_outbox_messages", "Outbox messages by state", labels=["state"])
        for state, n in sorted(snap.outbox.items()):
            outbox.add_metric([state], n)
        yield outbox
        yield GaugeMetricFamily(
            "cadence_outbox_oldest_pending_seconds",
            "How long the oldest message not yet sent has waited",
            value=snap.outbox_oldest_seconds,
        )
        deliveries = CounterMetricFamily(
            "cadence_outbox_deliveries", "This process's deliveries by outcome", labels=["outcome"]
        )
        live = self.metrics.deliveries() if self.metrics.deliveries else {}
        for outcome, n in sorted(live.items()):
            deliveries.add_metric([outcome], n)
        yield deliveries
        incidents = GaugeMetricFamily(
            "cadence_drift_open_incidents", "Drift incidents not resolved, by severity", labels=["severity"]
        )
        for severity, n in sorted(snap.open_incidents.items()):
            incidents.add_metric([severity], n)
        yield incidents
        readings = CounterMetricFamily(
            "cadence_drift_readings", "Drift readings this process received and stored", labels=["what"]
        )
        for what, n in sorted(snap.readings.items()):
            readings.add_metric([what], n)
        yield readings


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.snapshot = Snapshot()
        # this process's deliveries by outcome, read at each scrape (the worker's own tally)
        self.deliveries: Callable[[], dict[str, int]] | None = None
        self.ack = Histogram(
            "cadence_ack_seconds",
            "From a slash command reaching the bot to its answer, by subcommand",
            ["command"],
            registry=self.registry,
            buckets=ACK_BUCKETS,
        )
        self.refusals = Counter(
            "cadence_refusals",
            "Requests refused by who-may-do-what, by door",
            ["door"],
            registry=self.registry,
        )
        for door in ("slack", "api"):
            self.refusals.labels(door)
        self.answers = Counter(
            "cadence_answers",
            "Lists and plans given as kept at their team's revision (kept) or rendered afresh (rendered)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("kept", "rendered"):
            self.answers.labels(outcome)
        self.delivery = Histogram(
            "cadence_outbox_delivery_seconds",
            "From a message falling due to Slack having it (retries and waits included)",
            registry=self.registry,
            buckets=DELIVERY_BUCKETS,
        )
        self.lag = Histogram(
            "cadence_scheduler_lag_seconds",
            "How late the clock started a scheduled job (a reminder, a sweep)",
            registry=self.registry,
            buckets=LAG_BUCKETS,
        )
        self.registry.register(_Read(self))

    def render(self, snapshot: Snapshot | None = None) -> bytes:
        """The text format, with what was read for this scrape (no await between setting and reading);
        without one, with the last snapshot taken."""
        if snapshot is not None:
            self.snapshot = snapshot
        return generate_latest(self.registry)
