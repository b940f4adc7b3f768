"""Who is calling: the principal of each request, from the SDK's bearer-token layer.

Streamable HTTP can require a bearer token (APIMP_AUTH, see `build_auth`). A verifier turns a
valid token into a `PrincipalToken`, the SDK's `AccessToken` carrying the `Principal` it stands
for; the SDK's middleware puts it in the request's context, where `current_principal` reads it
in every tool and resource. Without authentication (stdio, APIMP_AUTH=none) every call is the
local principal's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from typing import Final

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl, ConfigDict, SecretStr

from apimp_video_mcp.access.keys import AccessKeys, key_hash
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Limits, Principal
from apimp_video_mcp.config import Settings

logger = logging.getLogger(__name__)


class PrincipalToken(AccessToken):
    """A verified token and the principal it stands for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    principal: Principal


def current_principal() -> Principal:
    """The caller's principal: the verified token's, or the local one when nothing authenticates."""
    token = get_access_token()
    return token.principal if isinstance(token, PrincipalToken) else LOCAL_PRINCIPAL


# --- Verifiers: one per APIMP_AUTH mode ----------------------------------------------------------


def default_limits(settings: Settings) -> Limits:
    """Each authenticated caller's limits unless the keys file says otherwise (0: no limit)."""
    return Limits(
        max_running_tasks=settings.max_running_tasks or None,
        max_submits_per_hour=settings.max_submits_per_hour or None,
    )


class KeysVerifier:
    """APIMP_AUTH=keys: a bearer token is an operator-issued key, looked up in the keys file."""

    def __init__(self, keys: AccessKeys) -> None:
        self.keys = keys

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self.keys.principal_for(token)
        if principal is None:
            return None
        # The token field holds the key's hash: the key itself need not outlive this request.
        return PrincipalToken(token=key_hash(token), client_id=principal.id, scopes=[], principal=principal)


# What could be an APIMP key: printable, no spaces, not absurdly long (APIMP's are `sk-` + 48).
_PLAUSIBLE_KEY: Final = re.compile(r"^[\x21-\x7e]{8,512}$")


class OwnKeyVerifier:
    """APIMP_AUTH=byok: the bearer token is the caller's own APIMP key.

    It cannot be checked here (APIMP has no endpoint for that): a wrong key is refused by APIMP
    on the caller's first request, with APIMP's message. The caller's principal is a keyed hash
    of it (HMAC-SHA256 with the server's secret), so the journal and every log name the caller
    without holding anything that would let someone spend their credits. The key itself lives
    only in memory, for the requests it authorises, and is sent only with that caller's requests.
    """

    def __init__(self, secret: bytes, *, limits: Limits) -> None:
        self._secret = secret
        self.limits = limits

    async def verify_token(self, token: str) -> AccessToken | None:
        if not _PLAUSIBLE_KEY.fullmatch(token):
            return None
        digest = hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()[:32]
        principal = Principal(f"byok:{digest}", api_key=SecretStr(token), limits=self.limits, upload_roots=())
        return PrincipalToken(token=principal.id, client_id=principal.id, scopes=[], principal=principal)


def byok_secret(settings: Settings) -> bytes:
    """APIMP_BYOK_SECRET, or a random secret kept in the data directory (created once, owner-only).

    Every instance of a cluster must share it (set APIMP_BYOK_SECRET), or one caller would be a
    different principal on each instance.
    """
    if settings.byok_secret is not None:
        return settings.byok_secret.get_secret_value().encode()
    path = settings.keys_file.with_name("byok-secret")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secret)
        logger.info("created the bring-your-own-key secret at %s", path)
        return secret


@dataclass(frozen=True)
class AuthSetup:
    """What MCPServer takes to require a bearer token: the SDK's settings and our verifier."""

    settings: AuthSettings
    verifier: TokenVerifier


def build_auth(settings: Settings, *, base_url: str) -> AuthSetup | None:
    """The bearer-token layer APIMP_AUTH asks for, or None for APIMP_AUTH=none.

    `base_url` is where the server is reached when APIMP_PUBLIC_URL is not set. Only OAuth
    publishes protected-resource metadata (see `server.oauth`): RFC 9728 metadata points OAuth
    clients at an authorization server, and the key modes have none (a client sends its key as a
    header instead).
    """
    if settings.auth == "none":
        return None
    if settings.auth == "oauth":
        from apimp_video_mcp.server.oauth import build_oauth  # PyJWT only when OAuth is used

        return build_oauth(settings)
    verifier: TokenVerifier
    if settings.auth == "keys":
        verifier = KeysVerifier(AccessKeys(settings.keys_file, default_limits=default_limits(settings)))
    else:
        verifier = OwnKeyVerifier(byok_secret(settings), limits=default_limits(settings))
    issuer = settings.public_url or base_url
    return AuthSetup(AuthSettings(issuer_url=AnyHttpUrl(issuer), resource_server_url=None), verifier)
