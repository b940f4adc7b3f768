"""Serving streamable HTTP safely on any address: the bind check, Host/Origin validation, proxies.

- Binding a non-loopback address with APIMP_AUTH=none is refused at start (anyone who reaches
  the port would spend the operator's credits) unless the operator says --allow-unauthenticated.
- Host and Origin are validated whatever the bind address (the SDK checks them only for exactly
  127.0.0.1, localhost and ::1): loopback names are always accepted, others only when listed in
  APIMP_ALLOWED_HOSTS / APIMP_ALLOWED_ORIGINS. A DNS-rebinding page, whose requests carry its own
  host name, is refused with 421 (Host) or 403 (Origin) before anything runs.
- Behind a TLS-terminating reverse proxy, X-Forwarded-For and X-Forwarded-Proto are believed
  only from APIMP_TRUSTED_PROXIES (uvicorn's forwarded_allow_ips; loopback by default).
- A client that hangs up before its request has arrived is not a server error: the SDK and
  uvicorn would log each one as an ERROR with a traceback, which buries real errors in a busy
  cluster (every instance restart or balancer timeout makes a few).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any, Final

import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect

from apimp_video_mcp.config import LogLevel, Settings
from apimp_video_mcp.errors import ConfigurationError

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
MCP_PATH: Final = "/mcp"
_WITH_PORT: Final = re.compile(r":([0-9]+|\*)$")
# Where a request cut off by its client is logged as an error: the SDK's legacy-era handler, and
# uvicorn for an exception out of the app (the 2026-07-28-era handler lets it through).
HANG_UP_LOGGERS: Final = ("mcp.server.streamable_http", "uvicorn.error")


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, settings: Settings, *, allow_unauthenticated: bool) -> None:
    """Refuse to serve every machine that can reach `host` with no authentication at all."""
    if settings.auth != "none" or is_loopback(host) or allow_unauthenticated:
        if not is_loopback(host) and not settings.allowed_hosts:
            logger.warning(
                "listening on %s, but only loopback Host headers are accepted: set APIMP_ALLOWED_HOSTS to "
                "the name (and port) clients use to reach this server",
                host,
            )
        return
    raise ConfigurationError(
        f"Refusing to serve streamable HTTP on {host} without authentication: anyone who can reach "
        "the port could spend your APIMP credits and read every task. Set APIMP_AUTH=keys (and issue "
        "keys with: apimp-video-mcp keys add NAME), APIMP_AUTH=byok (each caller brings their own "
        "APIMP key) or APIMP_AUTH=oauth; or bind 127.0.0.1; or, if something in front of this server "
        "already authenticates every request, pass --allow-unauthenticated."
    )


def transport_security(settings: Settings, *, host: str) -> TransportSecuritySettings:
    """Loopback's names and origins, the bind address itself (an IP literal cannot be rebound) and
    the configured ones, whatever the bind address."""
    names = [*LOOPBACK_HOSTS]
    if _is_specific_ip(host) and _bracketed(host) not in names:
        names.append(_bracketed(host))
    hosts = [*names, *(f"{name}:*" for name in names)]
    for entry in settings.allowed_hosts:
        hosts.extend([entry] if _WITH_PORT.search(entry) else [entry, f"{entry}:*"])
    origins = [f"http://{name}:*" for name in names] + [f"http://{name}" for name in names]
    for origin in settings.allowed_origins:
        origins.extend([origin.rstrip("/"), f"{origin.rstrip('/')}:*"])
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class HangUpFilter(logging.Filter):
    """Drops the error records of requests whose client hung up before sending them whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ClientDisconnect))


def quiet_client_hang_ups() -> None:
    """Install `HangUpFilter` where hang-ups are logged (once, however many apps are built)."""
    for name in HANG_UP_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(existing, HangUpFilter) for existing in target.filters):
            target.addFilter(HangUpFilter())


def http_app(server: MCPServer[Any], settings: Settings, *, host: str) -> Starlette:
    """The server's streamable HTTP app at /mcp, with Host/Origin validation on."""
    quiet_client_hang_ups()
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings, host=host),
        host=host,
        stateless_http=settings.http_stateless,  # legacy-era clients behind a balancer without stickiness
    )


async def serve_http(
    server: MCPServer[Any], settings: Settings, *, host: str, port: int, log_level: LogLevel
) -> None:
    """Run the app with uvicorn until cancelled, believing forwarded headers from trusted proxies only."""
    config = uvicorn.Config(
        http_app(server, settings, host=host),
        host=host,
        port=port,
        log_level=log_level.lower(),
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    await uvicorn.Server(config).serve()


def _is_specific_ip(host: str) -> bool:
    """An IP literal other than the wildcard addresses (0.0.0.0, ::), which name no one host."""
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    """How a Host header writes the address: IPv6 in brackets."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare
