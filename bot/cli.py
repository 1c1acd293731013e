"""`cadence` command line: serve, manifest, check-config, db."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import logs
from bot.config import AppConfig, ConfigError, Settings, config_warnings, explain_criteria, load_config
from bot.store.db import create_engine
from bot.text import plural

SETUP_HELP = """\
Cadence needs a Slack app before it can talk to Slack. To create one:
  1. cadence manifest --url https://YOUR-PUBLIC-HOST > manifest.json
     (without --url the manifest uses Socket Mode and needs no public address)
  2. At https://api.slack.com/apps choose "Create New App" -> "From a manifest" and paste it.
  3. Basic Information -> App Credentials -> Signing Secret:      export SLACK_SIGNING_SECRET=...
  4. Install App -> Install to Workspace -> Bot User OAuth Token:  export SLACK_BOT_TOKEN=xoxb-...
  5. For Socket Mode only: Basic Information -> App-Level Tokens, scope connections:write:
                                                                  export SLACK_APP_TOKEN=xapp-...
Then run `cadence serve` again."""


def _print_problems(exc: ConfigError) -> None:
    print(f"{exc.path}: the configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _config_or_exit(path: str) -> AppConfig:
    """The configuration, its warnings printed; or every problem printed and exit 2."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_problems(exc)
        raise SystemExit(2) from None
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return config


def _names_resolved_or_exit(config: AppConfig, settings: Settings) -> AppConfig:
    """The configuration with emails and #channel names replaced by Slack ids, before anything starts;
    exit 2 naming each one Slack does not know."""
    from bot.integrations.slack_names import resolve_names
    from bot.slack.app import web_client

    try:
        return asyncio.run(resolve_names(config, web_client(settings)))
    except ConfigError as exc:
        _print_problems(exc)
        raise SystemExit(2) from None


def _settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"environment: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings_or_exit() if args.slack or not args.file else Settings()
    path = args.file or settings.config_path
    config = _config_or_exit(path)
    _templates_or_exit(config, review=True)
    if args.explain:
        _explain(config)
    if args.slack and _check_with_slack(config, settings):
        return 2
    print(f"{path}: OK — {len(config.teams)} team(s): {', '.join(t.name for t in config.teams)}")
    if not args.slack:
        from bot.integrations.slack_names import references

        refs = list(references(config))
        names = sum(1 for ref in refs if not ref.is_id)
        print(
            f"People and channels were not checked with Slack ({len(refs)} in the file"
            + (f"; {names} are emails or #names, looked up when the bot starts" if names else "")
            + "); `cadence check-config --slack` checks them (needs SLACK_BOT_TOKEN)."
        )
    return 0


def _explain(config: AppConfig) -> None:
    """Each story type's Definition of Ready and of Done as the bot will use them, and their origin."""
    print("Story types and the criteria each ends up with:")
    current = None
    for item in explain_criteria(config):
        if item.story_type != current:
            current = item.story_type
            print(f"  {current}")
        kind = "readiness" if item.kind == "readiness" else "done     "
        print(f"    {kind} ({item.origin}):" + ("" if item.criteria else " no criteria"))
        width = max((len(c.key) for c in item.criteria), default=0)
        for criterion in item.criteria:
            print(f"      {criterion.key:<{width}}  {criterion.label}")


def _check_with_slack(config: AppConfig, settings: Settings) -> bool:
    """Print what Slack says about every person and channel in the configuration; True on any problem."""
    from bot.integrations.slack_names import SlackUnavailable, check_with_slack
    from bot.slack.app import web_client

    if not settings.slack_bot_token:
        print(
            "check-config --slack asks Slack about the people and channels, so it needs SLACK_BOT_TOKEN "
            "(the Bot User OAuth Token, xoxb-…, from the app's Install App page).",
            file=sys.stderr,
        )
        return True
    try:
        who, lookups = asyncio.run(check_with_slack(config, web_client(settings)))
    except SlackUnavailable as exc:
        print(f"{config.path}: {exc}", file=sys.stderr)
        return True
    print(f"Slack ({settings.slack_api_url}, as {who}):")
    problems = []
    for lookup in sorted(lookups, key=lambda found: config.line(found.ref.loc)):
        ref = lookup.ref
        if lookup.problem:
            problems.append(config.problem(ref.loc, lookup.problem))
            continue
        said = f"is {lookup.detail}" if lookup.id == ref.written else f"→ {lookup.id} ({lookup.detail})"
        print(f"  {config.problem(ref.loc, ref.written)} {said}")
    if problems:
        print(f"{config.path}: {len(problems)} problem(s) with Slack:", file=sys.stderr)
        for problem in dict.fromkeys(problems):
            print(f"  {problem}", file=sys.stderr)
    return bool(problems)


def cmd_manifest(args: argparse.Namespace) -> int:
    from bot.slack.manifest import build_manifest

    settings = _settings_or_exit()
    manifest = build_manifest(_config_or_exit(args.config or settings.config_path), args.url)
    if args.format == "yaml":
        print(yaml.safe_dump(manifest, sort_keys=False), end="")
    else:
        print(json.dumps(manifest, indent=2))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.store.migrate import current_revision, head_revision, upgrade

    settings = _settings_or_exit()
    engine = create_engine(settings.database_url)

    async def run() -> None:
        try:
            if args.action == "upgrade":
                await upgrade(engine)
                print(f"database is at revision {await current_revision(engine)} (head {head_revision()})")
            else:
                print(f"current {await current_revision(engine) or 'none'} · head {head_revision()}")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def _templates_or_exit(config: AppConfig, *, review: bool = False) -> None:
    """Exit 2 listing the templates that fail with sample values. `review`: the sprint-review templates
    too (at posting time a failing one falls back to the built-in one, so `serve` does not refuse)."""
    from bot.notify.templates import Renderer

    problems = Renderer(config.templates_dir).check()
    if review:
        from bot.notify.review import ReviewRenderer

        problems += ReviewRenderer(config.templates_dir).check()
    if problems:
        print("The message templates have problems:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(2)


def cmd_clock(args: argparse.Namespace) -> int:
    import signal

    from prometheus_client import start_http_server

    from bot.clock import SystemClock
    from bot.jobs.outbox_worker import delivery_client
    from bot.jobs.runner import build_clock
    from bot.metrics import Metrics
    from bot.services import readiness
    from bot.store.db import session_factory
    from bot.store.migrate import upgrade

    settings = _settings_or_exit()
    config = _config_or_exit(settings.config_path)
    _templates_or_exit(config)
    missing = [m for m in settings.missing_slack_credentials() if m.startswith("SLACK_BOT_TOKEN")]
    if missing:
        print(f"Cannot start: missing or invalid {', '.join(missing)}.\n", file=sys.stderr)
        print(SETUP_HELP, file=sys.stderr)
        return 2
    config = _names_resolved_or_exit(config, settings)

    async def run() -> None:
        engine = create_engine(settings.database_url)
        await upgrade(engine)
        sessions, clock = session_factory(engine), SystemClock()
        await readiness.reconcile_on_start(sessions, config)
        client = delivery_client(settings.slack_bot_token, settings.slack_api_url)
        figures = Metrics() if args.metrics_port else None
        runner = build_clock(
            config=config, settings=settings, sessions=sessions, clock=clock, slack=client, metrics=figures
        )
        if figures is not None:
            await runner.keep_metrics_fresh()
            start_http_server(args.metrics_port, addr=args.metrics_host, registry=figures.registry)
            logging.getLogger("bot.clock").info(
                "metrics at http://%s:%s/metrics", args.metrics_host, args.metrics_port
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.start()
        logging.getLogger("bot.clock").info("clock running; Ctrl-C to stop")
        await stop.wait()
        await runner.stop()
        await engine.dispose()

    asyncio.run(run())
    return 0


def _with_session(work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run one operator command in one transaction on DATABASE_URL; its exit code."""
    from bot.store.db import session_factory, unit_of_work

    engine = create_engine(_settings_or_exit().database_url)

    async def run() -> int:
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_outbox(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.jobs import outbox_worker

    async def work(session: AsyncSession) -> int:
        if args.action == "list":
            counts = await outbox_worker.counts(session)
            print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "empty")
            now = SystemClock().now()
            for row in await outbox_worker.list_messages(session, state=args.state, limit=args.limit):
                print(outbox_worker.describe_row(row, now))
            return 0
        if args.action == "retry":
            if args.id is None:
                print(
                    "outbox retry needs the id of a dead message (see `cadence outbox list --state dead`)",
                    file=sys.stderr,
                )
                return 2
            if await outbox_worker.retry_message(session, args.id, SystemClock().now()) is None:
                print(f"outbox message {args.id} does not exist or is not dead", file=sys.stderr)
                return 1
            print(f"outbox message {args.id} queued again")
            return 0
        print(f"purged {plural(await outbox_worker.purge_dead(session), 'dead message')}")
        return 0

    return _with_session(work)


async def _anchor(session: AsyncSession) -> int:
    """`cadence audit anchor`: queue the log's head for the governance channels (the clock delivers it)."""
    from bot.clock import SystemClock
    from bot.notify import Notifier
    from bot.notify.templates import Renderer
    from bot.services import audit

    config = _config_or_exit(_settings_or_exit().config_path)
    notifier = Notifier(config, None, Renderer(config.templates_dir), SystemClock())  # type: ignore[arg-type]
    head = await audit.anchor(session)
    await notifier.publish(session)
    if head is None:
        print("the audit log is empty: nothing to anchor")
    else:
        print(f"queued the head (row {head[0]}) for the governance channels")
    return 0


async def _against_slack(session: AsyncSession) -> Any:
    """The log against the heads posted to the governance channels."""
    from bot.integrations.slack_anchors import anchors_in
    from bot.notify.audit import anchor_channels
    from bot.services import audit
    from bot.slack.app import web_client

    settings = _settings_or_exit()
    config = _config_or_exit(settings.config_path)
    anchors = await anchors_in(web_client(settings), anchor_channels(config))
    if not anchors:
        print(
            "no audit heads found in the governance channels yet (run `cadence audit anchor`)",
            file=sys.stderr,
        )
    return await audit.against_anchors(session, anchors)


def cmd_audit(args: argparse.Namespace) -> int:
    import csv
    from datetime import UTC, date, datetime

    from bot.services import audit

    since = None
    if getattr(args, "since", None):
        try:
            since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(), UTC)
        except ValueError:
            print(f"--since {args.since!r} is not a date; write it as YYYY-MM-DD", file=sys.stderr)
            return 2

    async def work(session: AsyncSession) -> int:
        if args.action == "rekey":
            new = audit.current_key()
            old = os.environ.get("CADENCE_AUDIT_OLD_KEY") or None
            if new is None:
                print(
                    f"set {audit.KEY_ENV} to the new key (CADENCE_AUDIT_OLD_KEY to the old one, if any)",
                    file=sys.stderr,
                )
                return 2
            try:
                count = await audit.rekey(
                    session, old=old.encode() if old else None, new=new, actor="cli:audit-rekey"
                )
            except ValueError as exc:
                print(f"audit log not signed again: {exc}", file=sys.stderr)
                return 1
            print(f"audit log signed with the new key: {plural(count, 'row')}, and the rekey recorded")
            return 0
        if args.action == "anchor":
            return await _anchor(session)
        if args.action == "verify":
            result = await audit.verify(session)
            if result.ok and getattr(args, "against_slack", False):
                checked = result.checked
                result = await _against_slack(session)
                if result.ok:
                    print(
                        f"audit log OK: {plural(checked, 'row')}, every hash matches, and "
                        f"{plural(result.checked, 'head')} posted to Slack agree with it"
                    )
                    return 0
            if result.ok:
                print(f"audit log OK: {plural(result.checked, 'row')}, every hash matches")
                return 0
            print(
                f"audit log TAMPERED: {result.reason} (first bad row: {result.first_bad_seq}; "
                f"{plural(result.checked, 'row')} before it verify)",
                file=sys.stderr,
            )
            return 1
        fields = ["seq", "at", "actor", "action", "subject", "payload", "prev_hash", "hash"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields) if args.format == "csv" else None
        if writer:
            writer.writeheader()
        async for row in audit.export_rows(session, since=since):
            if writer:
                writer.writerow({**row, "payload": json.dumps(row["payload"], sort_keys=True)})
            else:
                print(json.dumps(row, sort_keys=True, ensure_ascii=False))
        return 0

    return _with_session(work)


def cmd_report(args: argparse.Namespace) -> int:
    """`cadence report sprint current|NAME [--team T] --format md|html|slack|json [--out FILE]`."""
    from pathlib import Path

    from bot.clock import SystemClock
    from bot.notify.review import ReviewRenderer, export
    from bot.services import sprint_review
    from bot.services.errors import NotFound
    from bot.services.sprints import resolve_sprint

    settings = _settings_or_exit()
    config = _config_or_exit(settings.config_path)
    ref = " ".join(args.sprint)
    teams = [t for t in config.teams if args.team in (None, t.name)]
    if args.team and not teams:
        known = ", ".join(t.name for t in config.teams)
        print(f"--team {args.team!r} is not a configured team (teams: {known})", file=sys.stderr)
        return 2

    async def work(session: AsyncSession) -> int:
        found = []
        for team in teams:
            try:
                found.append((team, await resolve_sprint(session, team=team, ref=ref)))
            except NotFound as exc:
                if args.team:
                    print(str(exc), file=sys.stderr)
                    return 1
        if not found:
            print(f"No team has a sprint {ref!r}.", file=sys.stderr)
            return 1
        if len(found) > 1:
            names = ", ".join(t.name for t, _ in found)
            print(f"Teams {names} all have a sprint {ref!r}: choose one with --team.", file=sys.stderr)
            return 2
        team, sprint = found[0]
        review = await sprint_review.build(
            session, config=config, team=team, sprint=sprint, now=SystemClock().now()
        )
        done.append(export(ReviewRenderer(config.templates_dir), review, args.format, command=config.command))
        done.append(f"{team.name} {sprint.name}")
        return 0

    done: list[Any] = []
    code = _with_session(work)
    if code or not done:
        return code
    rendered, which = done
    if rendered.problem:
        print(f"warning: {rendered.problem}; the built-in template was used", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(rendered.text, encoding="utf-8")
        print(f"wrote the review of {which} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(rendered.text if rendered.text.endswith("\n") else rendered.text + "\n")
    return 0


def _token_teams_or_exit(settings: Settings, config: AppConfig) -> None:
    """An API token scoped to a team the configuration does not have would change nothing anywhere:
    a typo, said before the server starts rather than as 403s later."""
    from bot.api.auth import parse_tokens

    known = {t.name for t in config.teams}
    for token in parse_tokens(settings.api_tokens):
        unknown = sorted((token.teams or frozenset()) - known)
        if unknown:
            print(
                f"Cannot start: the API token {token.label} in CADENCE_API_TOKENS is scoped to "
                f"{', '.join(unknown)}, which the configuration has no team called "
                f"(teams: {', '.join(sorted(known))}).",
                file=sys.stderr,
            )
            raise SystemExit(2)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.web import create_web_app

    settings = _settings_or_exit()
    config = _config_or_exit(settings.config_path)
    missing = settings.missing_slack_credentials()
    if missing:
        print(f"Cannot start: missing or invalid {', '.join(missing)}.\n", file=sys.stderr)
        print(SETUP_HELP, file=sys.stderr)
        return 2
    _templates_or_exit(config)
    _token_teams_or_exit(settings, config)
    config = _names_resolved_or_exit(config, settings)
    app = create_web_app(
        settings=settings,
        config=config,
        engine=create_engine(settings.database_url),
        migrate_on_start=True,
        run_scheduler=not args.no_scheduler,
        freeze_heap=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port or settings.port,
        log_level="info",
        proxy_headers=True,
        log_config=None,  # uvicorn's lines through Cadence's own handler (its format, the request id)
    )
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.integrations.slack_names import with_ids
    from bot.sandbox import demo
    from bot.sandbox.server import Sandbox

    names: dict[str, str] = {}
    if args.config:
        config = _config_or_exit(args.config)
        ids, names = demo.references_with_ids(config)  # no Slack to ask: the sandbox makes the ids up
        config = with_ids(config, ids)
    else:
        config = demo.demo_config()
    _templates_or_exit(config)
    if not args.verbose:  # the page shows what happens; the terminal keeps to the URL and to problems
        logging.getLogger().setLevel(logging.WARNING)
    database_url = args.database_url or f"sqlite+aiosqlite:///{Path(args.db).resolve()}"
    sandbox = Sandbox(
        config=config,
        database_url=database_url,
        port=args.port,
        host=args.host,
        seed=not args.no_demo,
        names=names,
    )
    url = f"http://{args.host}:{args.port}/"
    print(f"Cadence sandbox: open {url} (no Slack workspace needed; Ctrl+C stops it)", flush=True)
    uvicorn.run(sandbox.web, host=args.host, port=args.port, log_level="warning")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadence", description="Scrum ceremonies for teams shipping ML.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("CADENCE_LOG_FORMAT") or "text",
        help="text lines (default) or one JSON object per line; also CADENCE_LOG_FORMAT",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the Slack endpoint and health check")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="leave ceremonies and message delivery to a separate `cadence clock` process",
    )
    serve.set_defaults(func=cmd_serve)

    sandbox = sub.add_parser(
        "sandbox", help="the whole bot in a browser page, with a stand-in for Slack: no workspace, no tokens"
    )
    sandbox.add_argument("--port", type=int, default=3000)
    sandbox.add_argument(
        "--host",
        default="127.0.0.1",
        help="default: loopback only; anyone who reaches the page may act as anyone, so keep it there",
    )
    sandbox.add_argument("--config", help="run on this configuration instead of the built-in demo")
    sandbox.add_argument("--db", default="cadence-sandbox.db", help="the SQLite file (default: %(default)s)")
    sandbox.add_argument("--database-url", help="another database instead of --db")
    sandbox.add_argument(
        "--no-demo", action="store_true", help="do not seed the demo sprint, stories and review"
    )
    sandbox.set_defaults(func=cmd_sandbox)

    manifest = sub.add_parser("manifest", help="print the Slack app manifest for this configuration")
    manifest.add_argument("--url", help="public base URL of this server; omit for Socket Mode")
    manifest.add_argument("--config", help="configuration file (default: $CADENCE_CONFIG or ./config.yaml)")
    manifest.add_argument("--format", choices=("json", "yaml"), default="json")
    manifest.set_defaults(func=cmd_manifest)

    check = sub.add_parser("check-config", help="validate a configuration file and list every problem")
    check.add_argument("file", nargs="?", help="default: $CADENCE_CONFIG or ./config.yaml")
    check.add_argument(
        "--explain",
        action="store_true",
        help="print each story type's readiness and done criteria and where they come from",
    )
    check.add_argument(
        "--slack",
        action="store_true",
        help="ask Slack about every person and channel (needs SLACK_BOT_TOKEN): emails and #names "
        "resolved, unknown ids flagged",
    )
    check.set_defaults(func=cmd_check_config)

    clock = sub.add_parser("clock", help="run ceremonies, nudges and message delivery (no web server)")
    clock.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics (delivery latency, scheduler lag, the outbox) on this port",
    )
    clock.add_argument("--metrics-host", default="127.0.0.1", help="with --metrics-port (default 127.0.0.1)")
    clock.set_defaults(func=cmd_clock)

    outbox = sub.add_parser("outbox", help="inspect and repair queued messages")
    outbox.add_argument("action", choices=("list", "retry", "purge-dead"))
    outbox.add_argument("id", nargs="?", type=int, help="with retry: the dead message to queue again")
    outbox.add_argument("--state", choices=("pending", "sending", "sent", "dead"), help="with list")
    outbox.add_argument("--limit", type=int, default=50, help="with list")
    outbox.set_defaults(func=cmd_outbox)

    audit = sub.add_parser("audit", help="prove the decision log untampered, or export it")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = audit_sub.add_parser(
        "verify", help="recompute the hash chain; exit 1 and name the first bad row"
    )
    verify.add_argument(
        "--against-slack",
        action="store_true",
        help="also hold the log against the heads posted to the governance channels",
    )
    audit_sub.add_parser("anchor", help="post the log's head to the governance channels now")
    audit_sub.add_parser(
        "rekey",
        help="sign the chain with CADENCE_AUDIT_KEY (from CADENCE_AUDIT_OLD_KEY, or from no key at all)",
    )
    export = audit_sub.add_parser("export", help="every decision as JSON Lines or CSV")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", help="only rows from this date (YYYY-MM-DD, UTC) on")
    audit.set_defaults(func=cmd_audit)

    report = sub.add_parser("report", help="export a sprint review (Markdown, HTML, Slack mrkdwn or JSON)")
    report_sub = report.add_subparsers(dest="what", required=True, metavar="WHAT")
    sprint_report = report_sub.add_parser(
        "sprint", help="the review of one sprint: current, next or its name"
    )
    sprint_report.add_argument("sprint", nargs="+", help="current, next, or the sprint's name")
    sprint_report.add_argument("--team", help="the team (needed when several teams have such a sprint)")
    sprint_report.add_argument("--format", choices=("md", "html", "slack", "json"), default="md")
    sprint_report.add_argument("--out", help="write to this file instead of standard output")
    report.set_defaults(func=cmd_report)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade", "current"))
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log_format not in logs.FORMATS:  # from CADENCE_LOG_FORMAT, which argparse does not check
        print(f"CADENCE_LOG_FORMAT must be text or json, not {args.log_format!r}.", file=sys.stderr)
        return 2
    logs.configure(verbose=args.verbose, fmt=args.log_format)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
