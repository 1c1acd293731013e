"""Clients of other systems (Slack's directory, MLflow, metric sources)."""
