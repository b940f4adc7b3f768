"""Which addresses a result download may connect to, and which hosts an operator may allow."""

from __future__ import annotations

import ipaddress

import pytest

from apimp_video_mcp.config import Settings
from apimp_video_mcp.downloads.files import sniff_video_type
from apimp_video_mcp.downloads.network import AllowedHosts, refusal_reason
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.simulator import sample_video


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata address
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated, still routable by some stacks)
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 wrapping 169.254.169.254
        ("ff02::1", "multicast"),
    ],
)
def test_addresses_on_the_machines_own_networks_are_refused(address: str, kind: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "142.250.74.46", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allowed_hosts_match_a_name_or_a_name_and_port() -> None:
    allowed = AllowedHosts.parse(("127.0.0.1:8765", "CDN.internal", "[::1]:9000"))

    assert allowed.admits("127.0.0.1", 8765)
    assert not allowed.admits("127.0.0.1", 8766)
    assert allowed.admits("cdn.internal", 443)
    assert allowed.admits("::1", 9000)
    assert not allowed.admits("localhost", 8765)


def test_the_allowed_hosts_setting_is_read_and_checked() -> None:
    settings = Settings.from_env({"APIMP_DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1:8765, cdn.internal"})
    assert settings.download_allowed_hosts == ("127.0.0.1:8765", "cdn.internal")

    with pytest.raises(ConfigurationError, match="APIMP_DOWNLOAD_ALLOWED_HOSTS"):
        Settings.from_env({"APIMP_DOWNLOAD_ALLOWED_HOSTS": "http://cdn.internal/path"})


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (sample_video()[:16], "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81", "video/webm"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00", None),  # an ISO-BMFF image, not a video
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", None),
        (b"<!doctype html><html>", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d", None),
        (b"", None),
    ],
)
def test_a_video_is_known_by_its_signature(head: bytes, kind: str | None) -> None:
    assert sniff_video_type(head) == kind
