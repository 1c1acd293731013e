"""`cadence` command line: serve, manifest, check-config, db."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

import yaml

from bot.config import AppConfig, ConfigError, Settings, load_config
from bot.store.db import create_engine

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


def _config_or_exit(path: str) -> AppConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{exc.path}: the configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def _settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"environment: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or _settings_or_exit().config_path
    config = _config_or_exit(path)
    print(f"{path}: OK — {len(config.teams)} team(s): {', '.join(t.name for t in config.teams)}")
    return 0


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
    app = create_web_app(
        settings=settings, config=config, engine=create_engine(settings.database_url), migrate_on_start=True
    )
    uvicorn.run(app, host=args.host, port=args.port or settings.port, log_level="info", proxy_headers=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadence", description="Scrum ceremonies for teams shipping ML.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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

    manifest = sub.add_parser("manifest", help="print the Slack app manifest for this configuration")
    manifest.add_argument("--url", help="public base URL of this server; omit for Socket Mode")
    manifest.add_argument("--config", help="configuration file (default: $CADENCE_CONFIG or ./config.yaml)")
    manifest.add_argument("--format", choices=("json", "yaml"), default="json")
    manifest.set_defaults(func=cmd_manifest)

    check = sub.add_parser("check-config", help="validate a configuration file and list every problem")
    check.add_argument("file", nargs="?", help="default: $CADENCE_CONFIG or ./config.yaml")
    check.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade", "current"))
    db.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
