"""Who is calling: the principal of each request, from the SDK's bearer-token layer.

Streamable HTTP can require a bearer token (APIMP_AUTH, see `build_auth`). A verifier turns a
valid token into a `PrincipalToken`, the SDK's `AccessToken` carrying the `Principal` it stands
for; the SDK's middleware puts it in the request's context, where `current_principal` reads it
in every tool and resource. Without authentication (stdio, APIMP_AUTH=none) every call is the
local principal's.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict

from apimp_video_mcp.principals import LOCAL_PRINCIPAL, Principal


class PrincipalToken(AccessToken):
    """A verified token and the principal it stands for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    principal: Principal


def current_principal() -> Principal:
    """The caller's principal: the verified token's, or the local one when nothing authenticates."""
    token = get_access_token()
    return token.principal if isinstance(token, PrincipalToken) else LOCAL_PRINCIPAL
