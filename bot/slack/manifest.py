"""The Slack app manifest for this configuration: paste it at api.slack.com/apps to create the app."""

from __future__ import annotations

from typing import Any

from bot.config import AppConfig

# Only what the bot uses. DMs need no scope of their own to send: chat.postMessage to a user id posts in
# the app's Messages tab with chat:write. Views (forms, the App Home) need no scope either. The history
# scopes let the outbox look for a message a crash left in doubt before sending it again
# (docs/operations.md); without them it sends again, at least once.
BOT_SCOPES = [
    "commands",  # the slash command
    "chat:write",  # reminders, nudges, review requests, DMs, and edits of them
    "chat:write.public",  # post to public team channels without being invited first (private: /invite)
    "users:read",  # people's time zones for "send at 9:00 local"
    "users:read.email",  # people written in the configuration by email
    "channels:read",  # public channels written in the configuration as #name
    "groups:read",  # private channels (the bot is in) written as #name
    "files:write",  # the sprint review's burndown and velocity charts (files_upload_v2)
    "channels:history",  # audit heads read back; a message in doubt looked for before it is resent
    "groups:history",  # … in a private channel
    "im:history",  # … in a DM
    "im:write",  # the DM's conversation id, for that lookup (conversations.open)
]
BOT_EVENTS = ["app_home_opened"]


def build_manifest(config: AppConfig, url: str | None = None) -> dict[str, Any]:
    base = (url or config.public_url or "").rstrip("/")
    socket_mode = not base
    command: dict[str, Any] = {
        "command": config.command,
        "description": "Stories, readiness, sprints and reviews",
        "usage_hint": "help | story add <title> | ready S-1 | sprint plan",
        "should_escape": True,  # mentions arrive as <@U123|name>, so owners resolve to user ids
    }
    events: dict[str, Any] = {"bot_events": BOT_EVENTS}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        endpoint = f"{base}/slack/events"
        command["url"] = endpoint
        events["request_url"] = endpoint
        interactivity["request_url"] = endpoint
    return {
        "display_information": {
            "name": config.app_name,
            "description": "Runs Scrum ceremonies for teams shipping ML to production",
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": config.app_name.lower(), "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
