"""The layers of docs/architecture.md, checked on the source: who may import whom, and no cycles among
services. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(p): p for p in sorted(BOT.rglob("*.py")) if "migrations" not in p.relative_to(BOT).parts
    }


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports, anywhere in it; `from bot.services import x` yields bot.services.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                here = module_name(path).split(".")
                package = here if path.name == "__init__.py" else here[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {i for i in imports_of(path) if i in known} for name, path in known.items()}


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offenders(importer_pkg: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name, path in modules().items():
        if not under(name, importer_pkg):
            continue
        for imported in set(imports_of(path)):
            if any(under(imported, f) for f in forbidden):
                found.append(f"{name} imports {imported}")
    return sorted(found)


def test_the_slack_adapter_and_the_api_never_import_the_jobs():
    assert offenders("bot.slack", ("bot.jobs",)) == []
    assert offenders("bot.api", ("bot.jobs",)) == []


def test_services_never_post_nor_know_slack_or_the_web():
    forbidden = (
        "bot.store.outbox",
        "bot.notify",
        "bot.jobs",
        "bot.slack",
        "bot.api",
        "bot.web",
        "slack_sdk",
        "slack_bolt",
        "fastapi",
        "httpx",
    )
    assert offenders("bot.services", forbidden) == []


def test_only_the_notifier_queues_messages():
    writers = sorted(
        name
        for name, path in modules().items()
        if "bot.store.outbox" in set(imports_of(path)) and not under(name, "bot.store")
    )
    assert writers and all(under(w, "bot.notify") for w in writers), writers


def test_jobs_only_schedule_through_the_notifier():
    """Jobs claim what is due; what it says is the notifier's (no Block Kit, no templates in jobs)."""
    assert offenders("bot.jobs", ("bot.slack", "bot.api", "bot.store.outbox")) == []


def test_the_bot_never_depends_on_the_sandbox():
    """The sandbox drives the bot from outside (signed requests, the stand-in's Web API); only the CLI
    that starts it knows it exists."""
    for package in (
        "bot.services",
        "bot.slack",
        "bot.api",
        "bot.jobs",
        "bot.notify",
        "bot.store",
        "bot.integrations",
    ):
        assert offenders(package, ("bot.sandbox",)) == []
    assert offenders("bot.sandbox", ("bot.store.outbox", "bot.slack")) == []


def test_no_import_cycle_among_services():
    edges = {n: {i for i in deps if under(i, "bot.services")} for n, deps in graph().items()}
    services = {n for n in edges if under(n, "bot.services") and n != "bot.services"}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, set()) & services):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for service in sorted(services):
        if service not in state and (cycle := visit(service)):
            pytest.fail("import cycle among services: " + " -> ".join(cycle))


def test_every_event_has_exactly_one_handler():
    from bot.notify.notifier import HANDLERS
    from bot.services import events

    defined = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, events.Event) and obj is not events.Event
    }
    assert defined == set(HANDLERS), "each domain event needs one handler in bot/notify/notifier.py"


def test_the_checks_see_imports_inside_functions(tmp_path):
    """The walker is not fooled by an import hidden in a function (how the old stories↔sprints cycle hid)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from bot.services import sprints\n    return sprints\n")
    assert "bot.services.sprints" in set(imports_of(source))
