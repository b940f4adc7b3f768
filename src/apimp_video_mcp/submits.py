"""Submitting a video: checked, priced, written down first, sent at most once, settled whatever happens.

A submit is the one call that costs money and cannot be taken back, so its path is the strictest
in the service, and it lives here on its own: the documented rules, the price and the
principal's limits are checked before anything is sent; the request is journaled before it is
sent (a submit the journal cannot hold is not sent), with the limit and budget checks and that
write made one step under the store's submit lock; the client never sends it twice; and its
journal entry is settled whatever happens, even on cancellation: accepted with its task id,
dropped when APIMP provably created nothing, or kept as "outcome unknown" when it may have.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext

import anyio

from apimp_video_mcp.access.limits import SubmitLimits
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import Spending
from apimp_video_mcp.costs.pricing import CostEstimate
from apimp_video_mcp.costs.quotes import Quoter
from apimp_video_mcp.errors import (
    AuthenticationError,
    ConfigurationError,
    JournalUnavailableError,
    OverBudgetError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    UpstreamRejectedError,
    UpstreamUnreachableError,
)
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot, effective_format
from apimp_video_mcp.results import CostQuote, SubmitResult
from apimp_video_mcp.store import TaskStore
from apimp_video_mcp.store.interface import describe_failure
from apimp_video_mcp.store.write_retry import JournalRetry
from apimp_video_mcp.upstream.client import ApimpClient
from apimp_video_mcp.upstream.uploads import ImageUploader

logger = logging.getLogger(__name__)

NEXT_AFTER_SUBMIT = (
    "Next: call wait_for_video with this task_id (it returns when the video is ready, or after its "
    "timeout with the current status: then simply call it again). Video generation usually takes "
    "from tens of seconds to a few minutes."
)

# Failures after which APIMP provably created nothing: the journal entry can be dropped.
_NOTHING_CREATED = (
    ConfigurationError,
    UpstreamRejectedError,
    AuthenticationError,
    RateLimitedError,
    UpstreamUnreachableError,
)


class Submitter:
    """The submit path of `VideoService` (see the module's docstring), over the journal, the
    quoter and the principal's own client and uploader (`client_for`, `uploader_for`)."""

    def __init__(
        self,
        settings: Settings,
        journal: TaskStore,
        *,
        costs: Quoter,
        journal_retry: JournalRetry,
        client_for: Callable[[Principal], ApimpClient],
        uploader_for: Callable[[Principal], ImageUploader],
    ) -> None:
        self.settings = settings
        self.journal = journal
        # Prices, budgets and the confirmation threshold, weighed before anything is sent.
        self.costs = costs
        # Accepted tasks the journal refused to record, written again in the background.
        self.journal_retry = journal_retry
        # A principal's running tasks and submits per hour, counted from the journal.
        self.limits = SubmitLimits(journal)
        self._client_for = client_for
        self._uploader_for = uploader_for

    async def submit(
        self,
        request: SubmitRequest,
        *,
        principal: Principal = LOCAL_PRINCIPAL,
        max_cost: float | None = None,
        approved: bool = False,
    ) -> SubmitResult:
        """Check the documented rules, the price and the principal's limits, journal the request,
        then create the task (never twice).

        `approved` says a person accepted this price (the server asked them); without it, an
        estimate above the confirmation threshold needs a `max_cost` covering it.
        """
        quote = await self.quote(request, principal=principal, max_cost=max_cost)
        self.costs.refuse_unless_allowed(quote, approved=approved)
        cost = quote.estimated_cost
        await self.limits.check(principal)  # a submit over a limit uploads nothing
        # Local images become hosted URLs, before the submit lock: an upload may take a while.
        request, uploaded = await self._uploader_for(principal).localize(request)
        entry_id, spending = await self._journal_within_limits(request, principal, cost)
        snapshot = await self._submit_journaled(request, entry_id, principal)
        logger.info("submitted %s task %s (estimated %s)", request.model, snapshot.task_id, cost.display)
        return SubmitResult(
            task_id=snapshot.task_id,
            status=snapshot.status,
            created_time=snapshot.created_time,
            model=request.model,
            effective_format=effective_format(request),
            uploaded_images=uploaded,
            journal_warning=await self._record_accepted(entry_id, snapshot),
            estimated_cost=cost,
            # Counted before the task was sent: a journal that fails now cannot cost the task id.
            spending=spending.including(cost, self.settings.price_table),
            next_step=NEXT_AFTER_SUBMIT,
        )

    async def quote(
        self, request: SubmitRequest, *, principal: Principal = LOCAL_PRINCIPAL, max_cost: float | None = None
    ) -> CostQuote:
        """Price a request with exactly the checks of submit (rules, files, caps), sending nothing."""
        request.check_documented_rules()
        await self._uploader_for(principal).check(request)
        return await self.costs.quote(request, principal=principal, max_cost=max_cost)

    async def _journal_within_limits(
        self, request: SubmitRequest, principal: Principal, cost: CostEstimate
    ) -> tuple[str, Spending]:
        """Check the limits and the budgets (again: a parallel submit may have taken the rest), and
        journal the submit they allow: as one step, under the principal's submit lock, so that two
        submits at once, on this instance or on another sharing the journal, cannot both fit in
        the last of a limit or a budget. If the step fails after the entry was written (the lock
        was lost meanwhile), nothing is sent, so the entry is dropped."""
        entry_id: str | None = None
        try:
            async with self._submit_lock(principal):
                spending = await self._within_limits(principal, cost)
                entry_id = await self._record_submission(request, principal, cost)
        except BaseException:
            if entry_id is not None:
                await self._settle(self.journal.discard(entry_id), entry_id)
            raise
        return entry_id, spending

    async def _within_limits(self, principal: Principal, cost: CostEstimate) -> Spending:
        """The principal's spending so far, if one more submit at `cost` breaks no limit and no budget."""
        await self.limits.check(principal)
        spending = await self.costs.spending(principal)
        refusal = spending.refusal(cost, self.settings.price_table)
        if refusal is not None:
            raise OverBudgetError(refusal)
        return spending

    def _submit_lock(self, principal: Principal) -> AbstractAsyncContextManager[None]:
        """The store's submit lock when a limit or a budget counts the principal's submits; else none
        (nothing is counted, so parallel submits have nothing to overrun)."""
        budgeted = self.settings.budget_daily is not None or self.settings.budget_monthly is not None
        if budgeted or SubmitLimits.apply_to(principal):
            return self.journal.submit_lock(principal.id)
        return nullcontext()

    async def _record_submission(
        self, request: SubmitRequest, principal: Principal, cost: CostEstimate
    ) -> str:
        """Write the request (and its estimate) down first: a submit the journal cannot hold is not sent."""
        try:
            return await self.journal.record_submission(
                request.model,
                request.to_body(),
                principal=principal.id,
                cost=cost.amount,
                currency=cost.currency,
            )
        except Exception as exc:
            logger.exception("the task journal could not record a submit, which was not sent")
            raise JournalUnavailableError(
                f"The task journal could not record the request ({describe_failure(exc)}), so the video "
                "was NOT submitted and nothing was charged. Check APIMP_JOURNAL (free disk space, write "
                "permission, another process holding it), then try again."
            ) from exc

    async def _submit_journaled(
        self, request: SubmitRequest, entry_id: str, principal: Principal
    ) -> TaskSnapshot:
        """Send the submit and settle its journal entry whatever happens, even on cancellation."""
        try:
            snapshot = await self._client_for(principal).submit(request)
        except _NOTHING_CREATED:
            await self._settle(self.journal.discard(entry_id), entry_id)
            raise
        except SubmitOutcomeUnknownError as exc:
            await self._settle(self.journal.record_unknown_outcome(entry_id), entry_id)
            raise SubmitOutcomeUnknownError(
                f"{exc} The request is kept in the task journal as {entry_id} (see list_tasks)."
            ) from None
        except BaseException:
            # Cancelled or crashed mid-request: the task may exist, so the entry stays as unknown.
            await self._settle(self.journal.record_unknown_outcome(entry_id), entry_id)
            raise
        return snapshot

    async def _record_accepted(self, entry_id: str, snapshot: TaskSnapshot) -> str | None:
        """Record the task APIMP created; when the journal refuses, retry later and say so (the id is
        in hand, so it is returned whatever the journal does)."""

        async def write() -> None:
            await self.journal.record_accepted(entry_id, snapshot)

        try:
            with anyio.CancelScope(shield=True):  # the answer is in hand: record it even if the caller left
                await write()
        except Exception as exc:
            failure = describe_failure(exc)
            logger.warning(
                "the task journal could not record task %s (%s): %s", snapshot.task_id, entry_id, failure
            )
            retried = self.journal_retry.retry(
                write, what=f"task {snapshot.task_id} (journal entry {entry_id})"
            )
            later = "it is retried in the background" if retried else "it will not be retried"
            return (
                f"APIMP created task {snapshot.task_id}, but it could not be recorded in the task journal "
                f"({failure}); {later}. Keep this task_id: until it is recorded, list_tasks shows this "
                f"submit only as {entry_id}, with its outcome unknown."
            )
        return None

    async def _settle(self, write: Awaitable[None], entry_id: str) -> None:
        """Settle a submit's entry after a failure, without hiding that failure behind the journal's.

        If the journal refuses, the entry stays "sending", which reads back as "outcome unknown":
        the safe side for a submit whose fate is being reported anyway.
        """
        try:
            with anyio.CancelScope(shield=True):
                await write
        except Exception as exc:
            logger.warning("the task journal could not settle %s: %s", entry_id, describe_failure(exc))
