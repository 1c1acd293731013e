"""Scheduled work: ceremonies, readiness nudges, standups and outbox delivery. Jobs never call Slack
to send; they put messages in the outbox and the worker delivers them."""
