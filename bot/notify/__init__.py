"""What the bot says on its own: domain events in, outbox messages out, in the change's transaction."""

from bot.notify.notifier import Notifier

__all__ = ["Notifier"]
