"""Persistence: tables, engine, migrations and the small repositories other layers share."""
