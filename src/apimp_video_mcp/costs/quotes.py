"""Quoting a request before it is paid for: its estimate, weighed against max_cost, the budgets and
the confirmation threshold.

A quote is the one place these rules meet, so `estimate_cost` (which sends nothing) and
`submit_video` (which refuses on the same grounds) can never disagree about a price.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.catalog import DEFAULT_RESOLUTION
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import Spending, period_starts
from apimp_video_mcp.costs.pricing import CostEstimate, estimate
from apimp_video_mcp.errors import (
    ConfirmationRequiredError,
    JournalUnavailableError,
    OverBudgetError,
    OverMaxCostError,
)
from apimp_video_mcp.models import SubmitRequest, effective_format
from apimp_video_mcp.results import CostQuote
from apimp_video_mcp.store import TaskStore
from apimp_video_mcp.store.interface import describe_failure


class Quoter:
    """Prices requests from the settings' price table and the principal's spend in the journal."""

    def __init__(self, settings: Settings, journal: TaskStore) -> None:
        self.settings = settings
        self.journal = journal

    async def quote(
        self, request: SubmitRequest, *, principal: Principal = LOCAL_PRINCIPAL, max_cost: float | None = None
    ) -> CostQuote:
        """The request's estimate, and whether max_cost, a budget or the threshold stands in its way.

        The caller has checked the request's rules; nothing here sends anything."""
        cost = self.estimate(request)
        spending = await self.spending(principal)
        threshold = self.settings.confirm_above_cost
        needs_confirmation = threshold is not None and cost.amount > threshold
        refusal = (
            self._over_max_cost(cost, max_cost) if _over(cost, max_cost) else None
        ) or spending.refusal(cost, self.settings.price_table)
        return CostQuote(
            model=request.model,
            effective_format=effective_format(request),
            estimated_cost=cost,
            spending=spending,
            max_cost=max_cost,
            confirm_above=threshold,
            needs_confirmation=needs_confirmation,
            refusal=refusal,
            next_step=_next_step_after_quote(needs_confirmation, refusal, max_cost, cost),
        )

    def estimate(self, request: SubmitRequest) -> CostEstimate:
        """The request's estimated price: its length, resolution and soundtrack, at the table's rate."""
        fmt = effective_format(request)
        metadata = request.input.metadata
        audio = (
            metadata.generate_audio if metadata is not None and metadata.generate_audio is not None else True
        )
        resolution = fmt.resolution or DEFAULT_RESOLUTION
        return estimate(
            self.settings.price_table,
            request.model,
            seconds=fmt.duration_seconds,
            resolution=resolution,
            audio=audio,
        )

    async def spending(self, principal: Principal = LOCAL_PRINCIPAL) -> Spending:
        """The principal's estimated spend today and this month, from the journal, beside the budgets."""
        table, zone = self.settings.price_table, self.settings.budget_zone
        starts = period_starts(datetime.now(UTC), zone)
        try:
            today = await self.journal.spent_since(starts[0], table.currency, principal=principal.id)
            this_month = await self.journal.spent_since(starts[1], table.currency, principal=principal.id)
        except Exception as exc:
            raise JournalUnavailableError(
                f"The task journal could not be read to total the estimated spend ({describe_failure(exc)}); "
                "nothing was sent. Check APIMP_JOURNAL, then try again."
            ) from exc
        return Spending.of(
            table,
            today=today,
            this_month=this_month,
            daily_budget=self.settings.budget_daily,
            monthly_budget=self.settings.budget_monthly,
            timezone=self.settings.budget_timezone,
            starts=starts,
        )

    def _over_max_cost(self, cost: CostEstimate, max_cost: float | None) -> str:
        table = self.settings.price_table
        return (
            f"The estimate, {cost.display} ({cost.shape}), is above max_cost "
            f"{table.format(max_cost or 0.0)}. Nothing was sent. Choose a shorter, lower-resolution or "
            "cheaper request, or, if the user agrees to the estimate, call again with max_cost covering it."
        )

    def _confirmation_needed(self, cost: CostEstimate) -> str:
        table = self.settings.price_table
        return (
            f"This video is estimated at {cost.display} ({cost.shape}), above the "
            f"{table.format(self.settings.confirm_above_cost or 0.0)} this server asks a person to approve "
            "(APIMP_CONFIRM_ABOVE), and the server cannot show them the question (this client or connection "
            "does not support MCP elicitation). Nothing was sent. Ask the user whether to generate it for "
            f"{cost.display}; if they agree, call submit_video again with the same arguments and max_cost "
            f"set to {cost.amount:g} (or the most they agreed to pay)."
        )

    def refuse_unless_allowed(self, quote: CostQuote, *, approved: bool) -> None:
        """Raise why a quoted request may not be sent: over max_cost or a budget, or unapproved.

        `approved` says a person accepted this price (the server asked them); without it, an
        estimate above the confirmation threshold needs a `max_cost` covering it.
        """
        cost, max_cost = quote.estimated_cost, quote.max_cost
        if quote.refusal is not None:
            raise (OverMaxCostError if _over(cost, max_cost) else OverBudgetError)(quote.refusal)
        if quote.needs_confirmation and not approved and not _covers(max_cost, cost):
            raise ConfirmationRequiredError(self._confirmation_needed(cost))


def _over(cost: CostEstimate, max_cost: float | None) -> bool:
    return max_cost is not None and cost.amount > max_cost


def _covers(max_cost: float | None, cost: CostEstimate) -> bool:
    return max_cost is not None and max_cost >= cost.amount


def _next_step_after_quote(
    needs_confirmation: bool, refusal: str | None, max_cost: float | None, cost: CostEstimate
) -> str:
    if refusal is not None:
        return "Change the request (or the max_cost, with the user's agreement) before submitting it."
    if needs_confirmation and not _covers(max_cost, cost):
        return (
            "submit_video will ask the user to approve this price; a client that cannot ask them needs "
            f"max_cost of at least {cost.amount:g}, set only after the user agreed."
        )
    return "submit_video would send this request as it stands."
