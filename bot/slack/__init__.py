"""Slack adapter: turns Slack payloads into service calls and results into Block Kit. No domain rules."""
