"""The `apimp-video-mcp` command: serve MCP over stdio or streamable HTTP, or run the simulator.

apimp-video-mcp                                   # stdio, for desktop hosts
apimp-video-mcp --transport streamable-http       # HTTP at http://127.0.0.1:8000/mcp
apimp-video-mcp --simulate                        # the whole workflow, no key, no cost
apimp-video-mcp simulate --port 8765              # only the APIMP simulator
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
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
    commands = parser.add_subparsers(dest="command")
    simulate = commands.add_parser("simulate", help="serve only the APIMP simulator over HTTP")
    simulate.add_argument("--host", default=defaults.DEFAULT_HTTP_HOST)
    simulate.add_argument("--port", type=int, default=defaults.DEFAULT_SIMULATOR_PORT)
    simulate.add_argument("--task-duration", type=float, default=20.0)
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
        else:
            anyio.run(_serve, args)
    except ConfigurationError as exc:
        print(f"apimp-video-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


async def _serve(args: argparse.Namespace) -> None:
    from apimp_video_mcp.server import serve

    settings = with_upload_roots(Settings.from_env(), args.upload_roots)
    if not args.simulate:
        await serve(
            settings, log_level=args.log_level, transport=args.transport, host=args.host, port=args.port
        )
        return

    from apimp_video_mcp.download_network import allowance_for
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
        await serve(
            settings, log_level=args.log_level, transport=args.transport, host=args.host, port=args.port
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


async def _simulate_only(args: argparse.Namespace) -> None:
    from apimp_video_mcp.simulator import SIMULATOR_API_KEY, Simulator, serve_simulator

    print(
        f"APIMP simulator on http://{args.host}:{args.port} (API key: {SIMULATOR_API_KEY}); Ctrl-C stops it",
        file=sys.stderr,
    )
    await serve_simulator(Simulator(task_duration_seconds=args.task_duration), host=args.host, port=args.port)
