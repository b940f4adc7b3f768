"""The `apimp-video-mcp` command: serve MCP over stdio or streamable HTTP, or run the simulator.

apimp-video-mcp                                   # stdio, for desktop hosts
apimp-video-mcp --transport streamable-http       # HTTP at http://127.0.0.1:8000/mcp
apimp-video-mcp --simulate                        # the whole workflow, no key, no cost
apimp-video-mcp simulate --port 8765              # only the APIMP simulator
apimp-video-mcp keys add alice                    # issue an access key (APIMP_AUTH=keys)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import anyio
from pydantic import SecretStr, ValidationError

from apimp_video_mcp import defaults
from apimp_video_mcp.config import LogLevel, Settings
from apimp_video_mcp.errors import ConfigurationError

logger = logging.getLogger("apimp_video_mcp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apimp-video-mcp",
        description="MCP server for video generation (Google Veo 3) through APIMP. "
        "Configured by APIMP_* environment variables; see the README.",
    )
    parser.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    parser.add_argument("--host", default=defaults.DEFAULT_HTTP_HOST, help="HTTP bind address")
    parser.add_argument("--port", type=int, default=defaults.DEFAULT_HTTP_PORT, help="HTTP port")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="run against a built-in APIMP simulator (no key, no cost): to try the workflow in a host",
    )
    parser.add_argument(
        "--task-duration",
        type=float,
        default=20.0,
        help="with --simulate or simulate: seconds a simulated task takes (default 20)",
    )
    parser.add_argument("--log-level", choices=get_args(LogLevel), default="WARNING", help="stderr log level")
    parser.add_argument(
        "--upload-roots",
        nargs="*",
        default=[],
        metavar="FOLDER",
        help="folders images may be uploaded from, instead of APIMP_UPLOAD_ROOTS (for hosts that pass a "
        "folder list as arguments, like the Claude Desktop bundle); none given leaves the setting as it is",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve streamable HTTP on a non-loopback address with APIMP_AUTH=none (only behind something "
        "that authenticates every request)",
    )
    commands = parser.add_subparsers(dest="command")
    simulate = commands.add_parser("simulate", help="serve only the APIMP simulator over HTTP")
    simulate.add_argument("--host", default=defaults.DEFAULT_HTTP_HOST)
    simulate.add_argument("--port", type=int, default=defaults.DEFAULT_SIMULATOR_PORT)
    simulate.add_argument("--task-duration", type=float, default=20.0)
    keys = commands.add_parser("keys", help="issue, list and revoke access keys (APIMP_AUTH=keys)")
    keys.add_argument(
        "--file", type=Path, help="the keys file (default: APIMP_KEYS_FILE, or beside the journal)"
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    add = key_commands.add_parser(
        "add", help="issue a key for NAME; it is printed once, only its hash is kept"
    )
    add.add_argument("name", help="who holds the key (letters, digits, . _ @ -)")
    add.add_argument(
        "--max-running-tasks", type=int, help="this key's limit (default APIMP_MAX_RUNNING_TASKS)"
    )
    add.add_argument("--max-submits-per-hour", type=int, help="(default APIMP_MAX_SUBMITS_PER_HOUR); 0: none")
    add.add_argument(
        "--upload-root", type=Path, action="append", default=[], help="a folder it may upload from"
    )
    add.add_argument(
        "--apimp-key-stdin", action="store_true", help="read this holder's own APIMP key from stdin"
    )
    key_commands.add_parser("list", help="list who holds keys (never the keys)")
    revoke = key_commands.add_parser("revoke", help="remove every key of NAME")
    revoke.add_argument("name")
    prune = commands.add_parser(
        "prune-journal",
        help="forget finished and failed tasks older than the retention (APIMP_JOURNAL_RETENTION_DAYS)",
    )
    prune.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        help="prune tasks that ended more than this many days ago (default: the retention; 0: all)",
    )
    prune.add_argument(
        "--delete-videos",
        action="store_true",
        default=None,
        help="also delete their saved videos (only files inside APIMP_DOWNLOAD_DIR)",
    )
    migrate = commands.add_parser(
        "migrate-journal",
        help="copy an SQLite task journal into a PostgreSQL one, to run the server as a cluster",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        help="the SQLite journal (default: APIMP_JOURNAL, else the per-user journal.sqlite3)",
    )
    migrate.add_argument(
        "--to",
        dest="target",
        required=True,
        help="the cluster's journal: postgresql://user@host:5432/database",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # Logs go to stderr: on stdio, stdout belongs to the protocol.
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "simulate":
            anyio.run(_simulate_only, args)
        elif args.command == "keys":
            _keys(args)
        elif args.command == "prune-journal":
            anyio.run(_prune_journal, args)
        elif args.command == "migrate-journal":
            anyio.run(_migrate_journal, args)
        else:
            anyio.run(_serve, args)
    except ConfigurationError as exc:
        print(f"apimp-video-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


async def _serve(args: argparse.Namespace) -> None:
    settings = with_upload_roots(Settings.from_env(), args.upload_roots)
    if not args.simulate:
        await _serve_with(settings, args)
        return

    from apimp_video_mcp.downloads.network import allowance_for
    from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, running_simulator

    simulator = Simulator(task_duration_seconds=args.task_duration)
    async with running_simulator(simulator) as base_url:
        logger.warning(
            "simulate mode: APIMP calls go to the built-in simulator at %s; nothing is charged", base_url
        )
        # Real models take minutes and the schedule expects that; a demo task takes seconds, so
        # polls are kept within a quarter of its duration.
        ceiling = min(settings.poll_max_interval_seconds, args.task_duration / 4)
        settings = settings.model_copy(
            update={
                "base_url": base_url,
                "api_key": SecretStr(SIMULATOR_API_KEY),
                "poll_max_interval_seconds": ceiling,
                "poll_min_interval_seconds": min(settings.poll_min_interval_seconds, ceiling),
                # The simulator serves result files on loopback, which downloads refuse: allow its own
                # host and port, and nothing more.
                "download_allowed_hosts": (*settings.download_allowed_hosts, allowance_for(base_url)),
            }
        )
        await _serve_with(settings, args)


async def _serve_with(settings: Settings, args: argparse.Namespace) -> None:
    from apimp_video_mcp.server import serve

    await serve(
        settings,
        log_level=args.log_level,
        transport=args.transport,
        host=args.host,
        port=args.port,
        allow_unauthenticated=args.allow_unauthenticated,
    )


def with_upload_roots(settings: Settings, folders: Sequence[str]) -> Settings:
    """`--upload-roots` replaces APIMP_UPLOAD_ROOTS, checked by the same rules (absolute folders).

    A bundle's multi-folder picker can only reach the server as arguments, one per folder; an
    empty pick arrives as the bare flag and keeps the environment's (or the transport's) default.
    """
    if not folders:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), "upload_roots": tuple(folders)})
    except ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors())
        raise ConfigurationError(f"Invalid configuration: --upload-roots: {problems}") from None


async def _prune_journal(args: argparse.Namespace) -> None:
    """Prune the journal the environment names, once, and say what went (the server need not stop)."""
    from apimp_video_mcp.store import task_store_for
    from apimp_video_mcp.store.retention import JournalRetention

    if args.older_than_days is not None and args.older_than_days < 0:
        raise ConfigurationError("--older-than-days must be 0 or more")
    settings = Settings.from_env()
    journal = task_store_for(settings.journal_path, pool_size=settings.postgres_pool_size)
    retention = JournalRetention(
        journal,
        retention_days=settings.journal_retention_days,
        delete_videos=settings.journal_prune_videos,
        download_dir=settings.download_dir,
    )
    try:
        report = await retention.prune(older_than_days=args.older_than_days, delete_videos=args.delete_videos)
    finally:
        await journal.close()
    print(report.summary())


async def _simulate_only(args: argparse.Namespace) -> None:
    from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, serve_simulator

    print(
        f"APIMP simulator on http://{args.host}:{args.port} (API key: {SIMULATOR_API_KEY}); Ctrl-C stops it",
        file=sys.stderr,
    )
    await serve_simulator(Simulator(task_duration_seconds=args.task_duration), host=args.host, port=args.port)


def _keys(args: argparse.Namespace) -> None:
    """The keys file's commands: the new key goes to stdout (and nowhere else), the rest to stderr."""
    from apimp_video_mcp.access.keys import KeyEntry, add_key, read_keys_file, revoke_principal

    path: Path = (args.file or Settings.from_env().keys_file).expanduser().absolute()
    if args.keys_command == "add":
        own_key = sys.stdin.readline().strip() if args.apimp_key_stdin else None
        try:
            entry = KeyEntry.model_validate(
                {
                    "principal": args.name,
                    "max_running_tasks": args.max_running_tasks,
                    "max_submits_per_hour": args.max_submits_per_hour,
                    "upload_roots": [root.expanduser() for root in args.upload_root],
                    "apimp_key": own_key or None,
                }
            )
        except ValidationError as exc:
            raise ConfigurationError(f"Invalid key: {exc.errors()[0]['msg']}") from None
        key = add_key(path, entry)
        print(key)
        print(
            f"Issued a key for {args.name} in {path}. It is shown only now: give it to them (clients send it "
            "as 'Authorization: Bearer <key>').",
            file=sys.stderr,
        )
    elif args.keys_command == "list":
        for digest, entry in read_keys_file(path).keys.items():
            print(f"{entry.principal}\t{digest[:19]}...\t{entry.created_at or ''}")
    else:
        removed = revoke_principal(path, args.name)
        print(f"Revoked {removed} key(s) of {args.name} in {path}.", file=sys.stderr)
        if not removed:
            raise SystemExit(1)


async def _migrate_journal(args: argparse.Namespace) -> None:
    """Copy every task of an SQLite journal into PostgreSQL; safe to run again (nothing is doubled)."""
    from apimp_video_mcp.store import is_postgres_url

    source = args.source or Settings.from_env().journal_path
    if not is_postgres_url(args.target):
        raise ConfigurationError(
            f"--to must be a PostgreSQL URL (postgresql://user@host:5432/database), not {args.target!r}"
        )
    path = await anyio.Path(source).expanduser()
    if is_postgres_url(source) or not await path.is_file():
        raise ConfigurationError(f"--from must be an existing SQLite journal file; {source!r} is not one")
    from apimp_video_mcp.store.transfer import copy_sqlite_to_postgres

    report = await copy_sqlite_to_postgres(str(path), args.target)
    print(f"apimp-video-mcp migrate-journal: {report}")
