"""APIMP_AUTH=oauth over real streamable HTTP, with tokens the test signs itself.

The issuer is a small HTTP app on loopback publishing OpenID discovery and a JWKS, so the server
fetches, caches and refreshes keys for real. What each refusal looks like on the wire (status and
WWW-Authenticate) is checked with raw HTTP; what a caller can see, with the SDK's Client. The same
flows against a real OpenID provider are in test_auth_oidc_provider.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apimp_video_mcp.access.principals import Limits
from apimp_video_mcp.config import Settings
from apimp_video_mcp.server.oauth import IssuerKeys, JwksError, JwtVerifier
from apimp_video_mcp.simulator import running_app
from tests.support import Upstream, structured, text_of
from tests.support.hostile import talking
from tests.support.http import client_with, initialize_request, serving_oauth

pytestmark = pytest.mark.anyio

SCOPE = "video:generate"
SUBMIT = {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "a lantern on a pier"}}


@dataclass
class Issuer:
    """A test authorization server: it signs tokens and publishes the keys that verify them."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    jwks_fetches: int = 0

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, audience: str, *, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": audience,
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            "scope": SCOPE,
        }
        payload.update(claims)
        return jwt.encode(payload, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

        async def jwks(request: Request) -> JSONResponse:
            self.jwks_fetches += 1
            published = [
                {
                    **RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
                    "kid": kid,
                    "use": "sig",
                    "alg": "RS256",
                }
                for kid, key in self.keys.items()
            ]
            return JSONResponse({"keys": published})

        return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)])


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    test_issuer = Issuer()
    test_issuer.add_key("k1")
    async with running_app(test_issuer.app()) as url:
        test_issuer.url = url
        yield test_issuer


@dataclass
class Served:
    url: str
    settings: Settings


@pytest.fixture
async def served(upstream: Upstream, tmp_path: Path, issuer: Issuer) -> AsyncIterator[Served]:
    async with serving_oauth(upstream.base_url, tmp_path, issuer=issuer.url, scopes=(SCOPE,)) as (
        url,
        settings,
    ):
        yield Served(url, settings)


async def post(url: str, token: str | None) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(url, **initialize_request(token))


async def test_the_protected_resource_metadata_is_discoverable(served: Served, issuer: Issuer) -> None:
    async with httpx2.AsyncClient() as http:
        challenge = await http.post(served.url, **initialize_request(None))
        metadata_url = challenge.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
        metadata = (await http.get(metadata_url)).json()

    assert challenge.status_code == 401
    assert (
        metadata_url
        == f"http://127.0.0.1:{httpx2.URL(served.url).port}/.well-known/oauth-protected-resource/mcp"
    )
    assert metadata["resource"] == served.settings.public_url
    assert metadata["authorization_servers"] == [issuer.url]
    assert metadata["scopes_supported"] == [SCOPE]


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("no token", 401, "invalid_token"),
        ("not a JWT", 401, "invalid_token"),
        ("another audience", 401, "invalid_token"),
        ("expired", 401, "invalid_token"),
        ("another issuer", 401, "invalid_token"),
        ("signed by a stranger", 401, "invalid_token"),
        ("HS256 with the public key", 401, "invalid_token"),
        ("missing scope", 403, "insufficient_scope"),
    ],
)
async def test_every_bad_token_gets_the_right_status_and_challenge(
    served: Served, issuer: Issuer, case: str, status: int, error: str
) -> None:
    audience = served.settings.public_url or ""
    stranger = Issuer(url=issuer.url)
    stranger.add_key("k1")  # the same kid, a different key
    tokens: dict[str, str | None] = {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "another audience": issuer.token("https://other.example.com/mcp"),
        "expired": issuer.token(audience, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "another issuer": issuer.token(audience, iss="https://evil.example.com"),
        "signed by a stranger": stranger.token(audience),
        "HS256 with the public key": jwt.encode(
            {"iss": issuer.url, "aud": audience, "sub": "x", "exp": int(time.time()) + 300, "scope": SCOPE},
            "k1-public-key-as-an-hmac-secret-0123456789",
            algorithm="HS256",
            headers={"kid": "k1"},
        ),
        "missing scope": issuer.token(audience, scope="other"),
    }

    response = await post(served.url, tokens[case])

    assert response.status_code == status
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer error="{error}"')
    assert 'resource_metadata="http://127.0.0.1:' in challenge


async def test_a_valid_token_works_and_its_subject_is_the_principal(served: Served, issuer: Issuer) -> None:
    audience = served.settings.public_url or ""
    async with client_with(served.url, issuer.token(audience, sub="alice")) as as_alice:
        task_id = structured(await as_alice.call_tool("submit_video", SUBMIT))["task_id"]
        mine = structured(await as_alice.call_tool("list_tasks", {}))["tasks"]
    async with client_with(served.url, issuer.token(audience, sub="bob")) as as_bob:
        theirs = text_of(await as_bob.call_tool("get_status", {"task_id": task_id}))
        listed = structured(await as_bob.call_tool("list_tasks", {}))["tasks"]
    async with client_with(served.url, issuer.token(audience, sub="alice", jti="another")) as alice_again:
        again = structured(await alice_again.call_tool("get_status", {"task_id": task_id}))

    assert [task["task_id"] for task in mine] == [task_id]
    assert mine[0]["principal"].startswith("oauth:")
    assert "no task" in theirs
    assert listed == []
    assert again["task_id"] == task_id


async def test_keys_are_cached_and_a_rotated_key_is_fetched_when_a_token_names_it(issuer: Issuer) -> None:
    audience = "http://127.0.0.1:1/mcp"
    async with httpx2.AsyncClient() as http:
        keys = IssuerKeys(issuer.url, jwks_url=None, http=http, refresh_min_seconds=0)
        verifier = JwtVerifier(keys, resource=audience, limits=Limits())
        first = await verifier.verify_token(issuer.token(audience))
        cached = await verifier.verify_token(issuer.token(audience))
        fetched_before_rotation = issuer.jwks_fetches
        issuer.add_key("k2")
        rotated = await verifier.verify_token(issuer.token(audience, kid="k2"))

    assert first is not None
    assert cached is not None
    assert fetched_before_rotation == 1
    assert rotated is not None
    assert issuer.jwks_fetches == 2


async def test_made_up_key_ids_do_not_become_a_stream_of_requests_to_the_issuer(issuer: Issuer) -> None:
    audience = "http://127.0.0.1:1/mcp"
    async with httpx2.AsyncClient() as http:
        verifier = JwtVerifier(
            IssuerKeys(issuer.url, jwks_url=None, http=http), resource=audience, limits=Limits()
        )
        assert await verifier.verify_token(issuer.token(audience)) is not None
        refused = [
            await verifier.verify_token(
                jwt.encode(
                    {"sub": "x"}, "a-secret-long-enough-for-hs256-0123456789", headers={"kid": f"made-up-{n}"}
                )
            )
            for n in range(5)
        ]

    assert refused == [None] * 5
    assert issuer.jwks_fetches == 1, "within the refresh interval, an unknown kid fetches nothing"


@pytest.mark.parametrize(
    ("app", "reason"),
    [
        (talking(b" " * 65536), "answered more than 1048576 bytes"),  # endless
        (talking(b" ", pause_seconds=0.05), r"did not answer within 0\.5 s"),  # a byte at a time
    ],
    ids=["endless", "trickling"],
)
async def test_a_key_endpoint_that_never_stops_talking_is_cut_off(app: Any, reason: str) -> None:
    """Every token check waits on a key fetch: it ends by its deadline, having kept at most 1 MiB."""
    async with running_app(app) as base_url, httpx2.AsyncClient() as http:
        keys = IssuerKeys(base_url, jwks_url=f"{base_url}/jwks", http=http, timeout_seconds=0.5)
        with anyio.fail_after(10), pytest.raises(JwksError, match=reason):
            await keys.key_for("any")
