"""APIMP_AUTH=oauth: this server as an OAuth 2.1 resource server, verifying JWT access tokens.

A token is accepted only when all of this holds (the SDK checks none of the first four):
- its signature verifies with a key of the issuer's JWKS (asymmetric algorithms only; the JWKS
  is fetched with httpx2, cached, and fetched again when a token names a `kid` it lacks, at most
  once per `defaults.JWKS_REFRESH_MIN_SECONDS`, so a stream of forged kids cannot hammer it);
- `iss` is APIMP_OAUTH_ISSUER exactly;
- `aud` names this server, APIMP_PUBLIC_URL (the RFC 8707 resource the client asked for), so a
  token issued for another service is refused here;
- it has not expired (and is not from the future);
- it carries every scope in APIMP_OAUTH_SCOPES: the verifier reports the token's scopes and the
  SDK's middleware answers 403 `insufficient_scope` when one is missing.

Anything else gets the SDK's 401 with `WWW-Authenticate: Bearer ... resource_metadata=...`, and the
RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp` names the issuer, so a client can
discover where to get a token. The principal is the pair (issuer, subject), as a hash.

PyJWT (with `cryptography`, already what the SDK itself depends on) verifies the tokens: a
well-kept JOSE library whose `decode` checks signature, `exp`, `nbf`, `iat`, `iss` and `aud`
together, with the algorithms pinned by us rather than by the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Final

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import Limits, Principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.errors import ConfigurationError
from apimp_video_mcp.server.auth import AuthSetup, PrincipalToken, default_limits
from apimp_video_mcp.upstream.answers import read_at_most

logger = logging.getLogger(__name__)

# Signatures only a key pair can make: an HMAC ("HS256") token would be checked against a public key.
ALGORITHMS: Final = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
DISCOVERY_PATHS: Final = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


class JwksError(Exception):
    """The issuer's keys could not be had; the token is refused, the reason logged."""


class IssuerKeys:
    """The issuer's JWKS: fetched on first need, kept, and fetched again for an unknown `kid`."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None,
        http: httpx2.AsyncClient,
        refresh_min_seconds: float = defaults.JWKS_REFRESH_MIN_SECONDS,
        timeout_seconds: float = defaults.JWKS_TIMEOUT_SECONDS,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._http = http
        self._refresh_min_seconds = refresh_min_seconds
        self._timeout_seconds = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = anyio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        key = self._find(kid)
        if key is not None:
            return key
        async with self._lock:  # one fetch for all the tokens waiting on it
            key = self._find(kid)
            recently = self._fetched_at is not None and (
                time.monotonic() - self._fetched_at < self._refresh_min_seconds
            )
            if key is None and not recently:
                await self._fetch()
                key = self._find(kid)
        if key is None:
            raise JwksError(f"no key {kid!r} in the issuer's JWKS")
        return key

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        url = self._jwks_url or await self._discover()
        document = await self._get_json(url)
        keys: dict[str, jwt.PyJWK] = {}
        for index, data in enumerate(document.get("keys", []) if isinstance(document, dict) else []):
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK.from_dict(data)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type or algorithm we do not take
            keys[str(data.get("kid", index))] = key
        self._keys = keys
        logger.info("fetched %d signing key(s) of %s", len(keys), self.issuer)

    async def _discover(self) -> str:
        """The JWKS URL from the issuer's metadata (OpenID discovery, else RFC 8414)."""
        for path in DISCOVERY_PATHS:
            try:
                metadata = await self._get_json(self.issuer.rstrip("/") + path)
            except JwksError:
                continue
            if isinstance(metadata, dict) and isinstance(metadata.get("jwks_uri"), str):
                self._jwks_url = str(metadata["jwks_uri"])
                return self._jwks_url
        raise JwksError(f"{self.issuer} publishes no jwks_uri; set APIMP_OAUTH_JWKS_URL")

    async def _get_json(self, url: str) -> Any:
        """The JSON document at `url`, read within the timeout and up to JWKS_MAX_BYTES: every token
        check waits on this fetch, so a slow or endless answer must not hold them (or the memory)."""
        try:
            with anyio.fail_after(self._timeout_seconds):
                status, body = await self._read_bounded(url)
        except TimeoutError:
            raise JwksError(f"{url} did not answer within {self._timeout_seconds:g} s") from None
        except httpx2.HTTPError as exc:
            raise JwksError(f"cannot reach {url}: {type(exc).__name__}") from None
        if len(body) > defaults.JWKS_MAX_BYTES:
            raise JwksError(f"{url} answered more than {defaults.JWKS_MAX_BYTES} bytes")
        if status != 200:
            raise JwksError(f"{url} answered HTTP {status} ({len(body)} bytes)")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise JwksError(f"{url} did not answer JSON") from None

    async def _read_bounded(self, url: str) -> tuple[int, bytes]:
        """The status and the body, read only until it passes JWKS_MAX_BYTES (see `read_at_most`)."""
        async with self._http.stream("GET", url) as response:
            return response.status_code, await read_at_most(response, defaults.JWKS_MAX_BYTES)


class JwtVerifier:
    """The SDK's TokenVerifier for JWT access tokens of one issuer, for one resource (this server)."""

    def __init__(self, keys: IssuerKeys, *, resource: str, limits: Limits) -> None:
        self.keys = keys
        self.resource = resource
        self.limits = limits

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            key = await self.keys.key_for(header.get("kid"))
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=_audiences(self.resource),
                issuer=self.keys.issuer,
                leeway=defaults.JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, JwksError) as exc:
            logger.info("refused a bearer token: %s", exc)  # the reason, never the token
            return None
        subject = str(claims["sub"])
        digest = hashlib.sha256(f"{self.keys.issuer}\0{subject}".encode()).hexdigest()[:32]
        principal = Principal(f"oauth:{digest}", limits=self.limits, upload_roots=())
        return PrincipalToken(
            token=principal.id,  # the token itself need not outlive this request
            client_id=str(claims.get("client_id") or claims.get("azp") or subject),
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            resource=self.resource,
            subject=subject,
            claims={"iss": self.keys.issuer},
            principal=principal,
        )


def build_oauth(settings: Settings, *, http: httpx2.AsyncClient | None = None) -> AuthSetup:
    """The resource server APIMP_OAUTH_ISSUER and APIMP_PUBLIC_URL describe."""
    if settings.oauth_issuer is None or settings.public_url is None:
        raise ConfigurationError(
            "APIMP_AUTH=oauth needs APIMP_OAUTH_ISSUER (the authorization server's issuer URL) and "
            "APIMP_PUBLIC_URL (this server's URL as clients reach it, e.g. https://video.example.com/mcp: "
            "the resource its tokens must be issued for)."
        )
    client = http or httpx2.AsyncClient(
        timeout=httpx2.Timeout(defaults.JWKS_TIMEOUT_SECONDS), follow_redirects=False
    )
    keys = IssuerKeys(settings.oauth_issuer, jwks_url=settings.oauth_jwks_url, http=client)
    verifier = JwtVerifier(keys, resource=settings.public_url, limits=default_limits(settings))
    # From strings, so the SDK keeps the issuer exactly as written (RFC 8414 compares it verbatim).
    auth = AuthSettings.model_validate(
        {
            "issuer_url": settings.oauth_issuer,
            "resource_server_url": settings.public_url,
            "required_scopes": list(settings.oauth_scopes) or None,
            "validate_token_resource": False,  # JwtVerifier checks `aud` itself, against the same URL
        }
    )
    return AuthSetup(auth, verifier)


def _audiences(resource: str) -> list[str]:
    """This server's URL, with and without a trailing slash (issuers differ on it)."""
    bare = resource.rstrip("/")
    return [bare, bare + "/"]


def _scopes(claims: dict[str, Any]) -> list[str]:
    """RFC 9068's space-separated `scope`, or the `scp` list some issuers use."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    scp = claims.get("scp")
    return [str(item) for item in scp] if isinstance(scp, list) else []
