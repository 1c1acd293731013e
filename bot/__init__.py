"""Cadence: a Slack bot that runs Scrum ceremonies for teams shipping ML to production."""

__version__ = "0.1.0"
