"""APIMP_AUTH=oauth end to end against a real OpenID provider: the certified npm `oidc-provider`.

The test starts the provider itself (tests/server/oidc/provider.js, its dependency pinned in the
package-lock beside it and installed by .ci/run) on loopback, gets JWT access tokens from it with
the client_credentials grant and an RFC 8707 resource indicator, and uses them against this server
over real streamable HTTP. Locally the tests are skipped when node or the provider is missing
(`npm ci --prefix tests/server/oidc`); under CI=true they fail.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.streams.text import TextReceiveStream

from tests.support import Upstream, structured, text_of
from tests.support.http import client_with, initialize_request, serving_oauth
from tests.support.processes import free_port, needed

pytestmark = pytest.mark.anyio

PROVIDER_DIR = Path(__file__).parent / "oidc"
SCOPE = "video:generate"
SUBMIT = {"model": "veo-3.0-fast-generate-001", "input": {"prompt": "fireflies in a jar"}}


@dataclass
class Provider:
    issuer: str

    async def token(self, client: str, *, resource: str, scope: str = SCOPE) -> str:
        """An access token from the provider's token endpoint (client_credentials + resource)."""
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                f"{self.issuer}/token",
                data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
                auth=(client, f"{client}-secret"),
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    node = needed(shutil.which("node"), "node (Debian's nodejs)")
    needed(
        str(PROVIDER_DIR / "node_modules" / "oidc-provider"),
        "oidc-provider: npm ci --prefix tests/server/oidc",
    )
    port = free_port()
    process = await anyio.open_process(
        [node, str(PROVIDER_DIR / "provider.js"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            async for chunk in TextReceiveStream(process.stdout):
                if "ready " in chunk:
                    break
        yield Provider(f"http://127.0.0.1:{port}")
    finally:
        with suppress(ProcessLookupError):
            process.terminate()
        with anyio.fail_after(10), anyio.CancelScope(shield=True):
            await process.wait()


@dataclass
class Served:
    url: str
    resource: str


@pytest.fixture
async def served(upstream: Upstream, tmp_path: Path, provider: Provider) -> AsyncIterator[Served]:
    async with serving_oauth(upstream.base_url, tmp_path, issuer=provider.issuer, scopes=(SCOPE,)) as served:
        url, settings = served
        yield Served(url, settings.public_url or "")


async def test_tokens_from_a_real_provider_authenticate_and_keep_callers_apart(
    served: Served, provider: Provider
) -> None:
    alices = await provider.token("alice", resource=served.resource)
    bobs = await provider.token("bob", resource=served.resource)

    with anyio.fail_after(30):
        async with client_with(served.url, alices) as as_alice:
            task_id = structured(await as_alice.call_tool("submit_video", SUBMIT))["task_id"]
            waited = structured(await as_alice.call_tool("wait_for_video", {"task_id": task_id}))
        async with client_with(served.url, bobs) as as_bob:
            theirs = await as_bob.call_tool("wait_for_video", {"task_id": task_id})
            listed = structured(await as_bob.call_tool("list_tasks", {}))

    assert waited["status"] == "finished"
    assert theirs.is_error
    assert "no task" in text_of(theirs)
    assert listed["tasks"] == []


async def test_a_real_providers_token_for_another_resource_is_refused(
    served: Served, provider: Provider
) -> None:
    elsewhere = await provider.token("alice", resource="https://other.example.com/mcp")

    async with httpx2.AsyncClient() as http:
        response = await http.post(served.url, **initialize_request(elsewhere))

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_a_real_providers_token_without_the_scope_gets_403(served: Served, provider: Provider) -> None:
    unscoped = await provider.token("alice", resource=served.resource, scope="other")

    async with httpx2.AsyncClient() as http:
        response = await http.post(served.url, **initialize_request(unscoped))

    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


async def test_the_metadata_names_the_real_provider(served: Served, provider: Provider) -> None:
    async with httpx2.AsyncClient() as http:
        challenge = await http.post(served.url, **initialize_request(None))
        metadata_url = challenge.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
        metadata = (await http.get(metadata_url)).json()
        issuer_metadata = (await http.get(f"{provider.issuer}/.well-known/openid-configuration")).json()

    assert challenge.status_code == 401
    assert metadata["resource"] == served.resource
    assert metadata["authorization_servers"] == [issuer_metadata["issuer"]]
