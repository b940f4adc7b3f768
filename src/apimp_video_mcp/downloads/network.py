"""Where a result download may connect: public addresses only, checked on the address connected to.

A result URL is data from APIMP's answer, not ours. Pointed at `http://169.254.169.254/...` (a
cloud's metadata service), `http://localhost:6379/`, or a name that resolves to 10.0.0.5, a plain
download fetches from the machine's own networks and hands the bytes to the caller through the
saved file (server-side request forgery).

So the check sits where the socket is opened. The download client's connection pool (httpcore2,
under httpx2) gets a network backend that resolves the host name itself, refuses every address
that is not public, and connects to the very address it checked: there is no second lookup for
a rebinding DNS server to answer differently. Each redirect to a new host opens its connection
through the same backend, so redirects are checked too. TLS is unchanged: httpcore2 still sends
the URL's host name as SNI and verifies the certificate against it, and the Host header is the
URL's. The client takes no proxy from the environment: through a proxy, the check would see only
the proxy's address.

An operator lets a host through, whatever its address, with APIMP_DOWNLOAD_ALLOWED_HOSTS (`name`
or `name:port`, matched against the URL's host as written): the simulator on loopback, or a CDN
inside their own network.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

from apimp_video_mcp import defaults
from apimp_video_mcp.errors import RefusedAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address inside them, and may reach it: judged by the IPv4 address.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: not private, not public
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why a download may not connect to `address` ("loopback", "private", ...); None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and not (address.is_loopback or address.is_unspecified):
        inner = embedded_ipv4(address)
        if inner is not None:
            return refusal_reason(inner)
    shared = isinstance(address, ipaddress.IPv4Address) and address in _SHARED
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared (carrier-grade NAT)", shared),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("reserved", not address.is_global),  # documentation, benchmarking and other special ranges
    )
    return next((kind for kind, applies in checks if applies), None)


@dataclass(frozen=True)
class AllowedHosts:
    """The hosts an operator allows whatever their address: `(host, port)`, or `(host, None)` for any port."""

    entries: frozenset[tuple[str, int | None]]

    @classmethod
    def parse(cls, hosts: Iterable[str]) -> AllowedHosts:
        """From APIMP_DOWNLOAD_ALLOWED_HOSTS's entries: `name`, `name:port`, `[v6]` or `[v6]:port`."""
        entries = set()
        for host in hosts:
            parts = urlsplit(f"//{host}")
            if parts.hostname:
                entries.add((parts.hostname, parts.port))
        return cls(frozenset(entries))

    def admits(self, host: str, port: int) -> bool:
        name = host.lower().strip("[]")
        return (name, port) in self.entries or (name, None) in self.entries


def allowance_for(url: str) -> str:
    """The APIMP_DOWNLOAD_ALLOWED_HOSTS entry that allows exactly `url`'s host and port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve(host: str, port: int, timeout_seconds: float | None) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, within the connect timeout."""
    try:
        with anyio.fail_after(timeout_seconds):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
    except OSError as exc:
        raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = (ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos)
    return list(dict.fromkeys(addresses))


class PublicAddressBackend(httpcore2.AsyncNetworkBackend):
    """Opens TCP connections to public addresses only (or to hosts the operator allows)."""

    def __init__(self, allowed: AllowedHosts, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self._allowed = allowed
        self._inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        if self._allowed.admits(host, port):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        judged = [(address, refusal_reason(address)) for address in await resolve(host, port, timeout)]
        public = [address for address, reason in judged if reason is None]
        if not public:
            address, reason = judged[0]
            raise RefusedAddressError(host, port, str(address), reason or "reserved")
        failure: httpcore2.ConnectError | None = None
        for address in public:  # the checked address itself: no second lookup
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicAddressTransport(httpx2.AsyncHTTPTransport):
    """httpx2's own HTTP transport, whose connection pool connects through `PublicAddressBackend`.

    httpx2's transport takes no network backend, so its httpcore2 pool is replaced by one built
    with the same settings and the backend. The tests that fetch from loopback fail if this ever
    stops taking effect.
    """

    def __init__(self, allowed: AllowedHosts, *, limits: httpx2.Limits) -> None:
        context: ssl.SSLContext = httpx2.create_ssl_context()
        super().__init__(verify=context, limits=limits)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PublicAddressBackend(allowed),
        )


def build_download_client(allowed_hosts: Iterable[str]) -> httpx2.AsyncClient:
    """The client result files are fetched with: public addresses only, no APIMP key, no env proxy."""
    limits = httpx2.Limits(
        max_connections=defaults.HTTP_MAX_CONNECTIONS,
        max_keepalive_connections=defaults.HTTP_MAX_KEEPALIVE_CONNECTIONS,
    )
    return httpx2.AsyncClient(
        transport=PublicAddressTransport(AllowedHosts.parse(allowed_hosts), limits=limits),
        timeout=httpx2.Timeout(
            defaults.DOWNLOAD_READ_TIMEOUT_SECONDS, connect=defaults.CONNECT_TIMEOUT_SECONDS
        ),
        headers={"user-agent": "apimp-video-mcp", "accept": "*/*"},
        follow_redirects=True,
        max_redirects=defaults.DOWNLOAD_MAX_REDIRECTS,
    )
