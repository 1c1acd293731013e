"""The domain: every rule about stories, readiness, sprints and the audit log lives here once."""
