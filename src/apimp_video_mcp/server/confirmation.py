"""Asking the person before an expensive submit: MCP elicitation, in both protocol eras.

Above the confirmation threshold (APIMP_CONFIRM_ABOVE), submit_video shows the person the price
("About 3.20 USD (estimate): 8 s, 1080p, veo-3.1-generate-preview. Generate?") and sends nothing
unless they accept. The question is a resolver (`Resolve`), so the SDK carries it the way the
negotiated protocol wants: a standalone `elicitation/create` request in the handshake era, an
`InputRequiredResult` the client answers by retrying the call in the 2026-07-28 era. Either way the
tool body runs only once the answer is in.

A client that declares no (form) elicitation, or a connection that cannot carry a request to the
client (stateless HTTP in the handshake era), is never asked: the service then refuses above the
threshold unless `max_cost` covers the estimate, with a message telling the agent to ask the user.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from apimp_video_mcp.costs.pricing import CostEstimate
from apimp_video_mcp.errors import NotApprovedError
from apimp_video_mcp.models import ModelChoice, SubmitRequest, VideoInput
from apimp_video_mcp.server.auth import current_principal
from apimp_video_mcp.server.outcomes import as_tool_errors

# The first protocol revision that carries elicitation inside the tool call's own result.
_INPUT_REQUIRED_VERSION: Final = "2026-07-28"


class PriceApproval(BaseModel):
    """The form the person sees: one box, ticked, to generate the video at the price shown."""

    generate: bool = Field(default=True, title="Generate", description="Generate this video at this price.")


class NotAsked(BaseModel):
    """No question was put: the price is under the threshold, refused anyway, or nobody can be asked."""


async def ask_before_spending(
    model: ModelChoice, input: VideoInput, max_cost: float | None, ctx: Context[Any, Any]
) -> Elicit[PriceApproval] | NotAsked:
    """The question to put to the person before this submit, when one is due and can be put."""
    with as_tool_errors():
        service = ctx.request_context.lifespan_context.service
        request = SubmitRequest(model=model, input=input)
        quote = await service.quote(request, principal=current_principal(), max_cost=max_cost)
    if quote.refusal is not None or not quote.needs_confirmation or not can_elicit(ctx):
        return NotAsked()
    return Elicit(question(quote.estimated_cost), PriceApproval)


Approval = Annotated[ElicitationResult[PriceApproval], Resolve(ask_before_spending)]


def question(cost: CostEstimate) -> str:
    """'About 3.20 USD (estimate): 8 s, 1080p, veo-3.1-generate-preview. Generate?'"""
    return f"{cost.display[:1].upper()}{cost.display[1:]} (estimate): {cost.shape}. Generate?"


def can_elicit(ctx: Context[Any, Any]) -> bool:
    """Whether the client can show the person a form now: it declared form elicitation, and the
    protocol era (or the connection) can carry the question."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (before modes existed) means forms; url-only does not.
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION):
        return True
    return bool(ctx.session.can_send_request)


def approved(outcome: ElicitationResult[PriceApproval], cost: CostEstimate) -> bool:
    """True when the person approved; False when nobody was asked; an error when they said no."""
    if isinstance(outcome, AcceptedElicitation):
        answer = outcome.data
        if not isinstance(answer, PriceApproval):
            return False  # NotAsked: the service applies the threshold and max_cost itself
        if answer.generate:
            return True
    what = "dismissed the question whether" if isinstance(outcome, CancelledElicitation) else "declined"
    raise NotApprovedError(
        f"The user {what} to generate this video for {cost.display} ({cost.shape}). Nothing was sent and "
        "nothing was charged. Do not resubmit it unless they ask; a shorter clip, a lower resolution or a "
        "fast model costs less (estimate_cost prices any variant)."
    )
