"""The video service: submit, check, wait and save. Plain async Python with no MCP in sight.

The MCP tools are thin adapters over this class, so everything a tool does can be used and
tested without a protocol in between.

Every call is made for a principal (`principals`): the owner of the tasks it creates, whose
tasks alone it may see, whose APIMP key (if it has its own) it uses upstream, whose folder its
videos are saved in and whose limits it counts against. It defaults to the local principal, the
one user of a stdio server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Literal

import anyio

from apimp_video_mcp import defaults
from apimp_video_mcp.access.limits import SubmitLimits
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import Spending
from apimp_video_mcp.costs.pricing import CostEstimate
from apimp_video_mcp.costs.quotes import Quoter
from apimp_video_mcp.downloads.saving import SaveOutcome, VideoSaver
from apimp_video_mcp.errors import (
    AuthenticationError,
    ConfigurationError,
    JournalUnavailableError,
    OverBudgetError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    UnknownTaskError,
    UpstreamRejectedError,
    UpstreamUnreachableError,
)
from apimp_video_mcp.local_files import LocalFilePolicy
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot, effective_format
from apimp_video_mcp.polling.coordination import ClusterCoordination, Coordination, PollingLeases
from apimp_video_mcp.polling.durations import generation_format, learned_typical_duration, typical_duration
from apimp_video_mcp.polling.pollers import (
    AdaptiveSchedule,
    Clock,
    PollerHub,
    ReportProgress,
    WaitOutcome,
    wait_for_task,
)
from apimp_video_mcp.polling.sharing import SharedStatus
from apimp_video_mcp.results import (
    CostQuote,
    SubmitResult,
    TaskList,
    TaskReport,
    UploadResult,
    WaitResult,
)
from apimp_video_mcp.store import EntryStatus, JournalEntry, TaskStore
from apimp_video_mcp.store.interface import describe_failure
from apimp_video_mcp.store.retention import JournalRetention
from apimp_video_mcp.store.write_retry import JournalRetry
from apimp_video_mcp.upstream.client import ApimpClient
from apimp_video_mcp.upstream.uploads import ImageUploader

logger = logging.getLogger(__name__)

NEXT_AFTER_SUBMIT = (
    "Next: call wait_for_video with this task_id (it returns when the video is ready, or after its "
    "timeout with the current status: then simply call it again). Video generation usually takes "
    "from tens of seconds to a few minutes."
)

STILL_SAVING = (
    "The video is ready and still being saved on the server: the download goes on in the background. "
    "Call wait_for_video again with this task_id to get the saved file's path (the video URL works "
    "meanwhile)."
)

# Failures after which APIMP provably created nothing: the journal entry can be dropped.
_NOTHING_CREATED = (
    ConfigurationError,
    UpstreamRejectedError,
    AuthenticationError,
    RateLimitedError,
    UpstreamUnreachableError,
)


async def _no_progress(progress: float, message: str) -> None:
    """The progress sink used when nobody listens."""


class VideoService:
    """Everything the tools do, over one `ApimpClient`, the task journal and the server's settings."""

    def __init__(
        self,
        settings: Settings,
        client: ApimpClient,
        journal: TaskStore,
        *,
        local_files: LocalFilePolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.journal = journal
        # The last status written to the journal of each task this process has seen running: it
        # spares the journal a write when nothing changed, and a read to ask if the task ended.
        self._recorded_running: dict[str, TaskSnapshot] = {}
        # Typical durations learned from the journal, by model and format: (clock time, seconds).
        self._typical_cache: dict[tuple[str | None, tuple[str | None, int | None]], tuple[float, float]] = {}
        self.journal_retry = JournalRetry(clock=clock)
        # Whose each polled (or running) task is: the poller asks APIMP with its owner's key.
        self._owners: dict[str, Principal] = {}
        # A principal's running tasks and submits per hour, counted from the journal.
        self.limits = SubmitLimits(journal)
        # Prices, budgets and the confirmation threshold, weighed before anything is sent.
        self.costs = Quoter(settings, journal)
        self.retention = JournalRetention(
            journal,
            retention_days=settings.journal_retention_days,
            delete_videos=settings.journal_prune_videos,
            download_dir=settings.download_dir,
            clock=clock,
        )
        # Without a policy from the server (which knows the transport), only configured roots count.
        self.uploads = ImageUploader(
            client,
            local_files
            or LocalFilePolicy.for_transport(
                settings.upload_roots, None, max_bytes=settings.upload_max_bytes
            ),
        )
        # One poller per task for the whole process: every waiter on a task shares its requests.
        self.pollers = PollerHub(
            self._poll_status,
            schedule=AdaptiveSchedule(
                floor_seconds=settings.poll_min_interval_seconds,
                ceiling_seconds=settings.poll_max_interval_seconds,
            ),
            typical_duration=lambda model: typical_duration(model).seconds,
            clock=clock,
            coordination=_coordination(settings, journal),
        )
        # One save job per finished task for the whole process, outliving the wait that started it.
        self.saver = VideoSaver(settings, journal, clock=self.pollers.clock)

        # One-off questions (get_status, the player) share one request per task at a time.
        self.statuses = SharedStatus(
            clock=self.pollers.clock,
            fresh_seconds=defaults.STATUS_FRESH_SECONDS,
            polled=self.pollers.latest_answer,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[VideoService]:
        """Run the background work (pollers, journal retries, shared requests, downloads, pruning)
        while the block lasts."""
        async with (
            self.journal_retry.running(),
            self.pollers.running(),
            self.statuses.running(),
            self.saver.running(),
            background_tasks() as group,
        ):
            group.start_soon(self.retention.run_periodically)
            yield self

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
        request, uploaded = await self._uploader(principal).localize(request)
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
        spending = await self.spending(principal)
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

    async def upload_image(self, source: str, *, principal: Principal = LOCAL_PRINCIPAL) -> UploadResult:
        """Upload one local image (from the principal's allowed folders) and return its hosted URL."""
        return await self._uploader(principal).upload(source)

    async def quote(
        self, request: SubmitRequest, *, principal: Principal = LOCAL_PRINCIPAL, max_cost: float | None = None
    ) -> CostQuote:
        """Price a request with exactly the checks of submit (rules, files, caps), sending nothing."""
        request.check_documented_rules()
        await self._uploader(principal).check(request)
        return await self.costs.quote(request, principal=principal, max_cost=max_cost)

    def estimate(self, request: SubmitRequest) -> CostEstimate:
        """The request's estimated price: its length, resolution and soundtrack, at the table's rate."""
        return self.costs.estimate(request)

    async def spending(self, principal: Principal = LOCAL_PRINCIPAL) -> Spending:
        """The principal's estimated spend today and this month, from the journal, beside the budgets."""
        return await self.costs.spending(principal)

    def client_for(self, principal: Principal) -> ApimpClient:
        """The client sending the principal's own APIMP key, or the server's when it has none."""
        key = principal.api_key
        if key is None:
            return self.client
        return self.client.with_api_key(lambda: key.get_secret_value())

    def _uploader(self, principal: Principal) -> ImageUploader:
        if principal.upload_roots is None and principal.api_key is None:
            return self.uploads
        policy = self.uploads.policy
        if principal.upload_roots is not None:
            policy = LocalFilePolicy.for_principal(
                principal.upload_roots, max_bytes=self.settings.upload_max_bytes
            )
        return ImageUploader(self.client_for(principal), policy)

    async def _submit_journaled(
        self, request: SubmitRequest, entry_id: str, principal: Principal
    ) -> TaskSnapshot:
        """Send the submit and settle its journal entry whatever happens, even on cancellation."""
        try:
            snapshot = await self.client_for(principal).submit(request)
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

    async def get_status(
        self, task_id: str, *, refresh: bool = False, principal: Principal = LOCAL_PRINCIPAL
    ) -> TaskReport:
        """The task's status: from the journal when it has ended (unless `refresh`), else from APIMP."""
        owner = self._owners.get(task_id)
        # A task this principal has seen running cannot have ended unseen: no journal read needed.
        if task_id not in self._recorded_running or owner is None or owner.id != principal.id:
            entry = await self.entry_for(task_id, principal)
            if entry is not None and entry.submit_state == "unknown":
                raise SubmitOutcomeUnknownError(_unknown_outcome_message(entry))
            if entry is not None and entry.is_terminal and not refresh:
                return TaskReport.from_entry(entry, _next_step_for(entry.status, timed_out=False))
        snapshot = await self.shared_status(task_id, principal, refresh=refresh)
        return TaskReport.from_snapshot(snapshot, _next_step(snapshot, timed_out=False))

    async def shared_status(
        self, task_id: str, principal: Principal, *, refresh: bool = False
    ) -> TaskSnapshot:
        """The task's status, shared with concurrent callers (see `status_sharing`); the caller has
        checked the task is the principal's (`entry_for`), so whoever asks first asks for everyone."""
        return await self.statuses.get(
            task_id, lambda: self.fetch_status(task_id, principal), refresh=refresh
        )

    async def entry_for(
        self, task_id: str, principal: Principal, *, with_events: bool = False
    ) -> JournalEntry | None:
        """The principal's journal entry for a task, or None for a task it may still ask APIMP about.

        Only the local principal asks APIMP about a task id the journal has never seen (a task
        submitted elsewhere with the same key). Anyone else's task, and for a remote principal any
        task not already its own, is refused with the same `UnknownTaskError`: the answer never
        tells whether a task exists.
        """
        with reading_the_journal(f"look up task {task_id}"):
            entry = await self.journal.get(task_id, principal=principal.id, with_events=with_events)
            refused = entry is None and (principal.remote or await self.journal.owner(task_id) is not None)
        if refused:
            raise UnknownTaskError(task_id)
        return entry

    async def fetch_status(
        self, task_id: str, principal: Principal = LOCAL_PRINCIPAL, *, retry: bool = True
    ) -> TaskSnapshot:
        """Ask APIMP (with the principal's key), and write what it says through to the journal (when
        it says something new). The caller has checked the task is the principal's (`entry_for`)."""
        snapshot = await self.client_for(principal).get_status(task_id, retry=retry)
        if self._recorded_running.get(task_id) != snapshot:
            try:
                await self.journal.record_status(snapshot, principal=principal.id)
            except Exception as exc:  # the status is still true: report it, write it next time
                logger.warning(
                    "the task journal could not record a status of %s: %s", task_id, describe_failure(exc)
                )
                self._recorded_running.pop(task_id, None)
                return snapshot
        if snapshot.is_terminal:
            self._recorded_running.pop(task_id, None)
            self._owners.pop(task_id, None)
        else:
            self._recorded_running[task_id] = snapshot
            self._owners[task_id] = principal
        return snapshot

    async def _poll_status(self, task_id: str) -> TaskSnapshot:
        """The pollers' fetch, one attempt (their own schedule decides when to try again), as the
        task's owner (set by `wait` before it follows)."""
        return await self.fetch_status(task_id, self._owners[task_id], retry=False)

    async def list_tasks(
        self, *, status: EntryStatus | None = None, limit: int = 20, principal: Principal = LOCAL_PRINCIPAL
    ) -> TaskList:
        """The principal's newest tasks in the journal, and their estimated spend today and this month."""
        with reading_the_journal("list the tasks"):
            summaries = await self.journal.summaries(principal=principal.id, status=status, limit=limit)
        return TaskList(tasks=summaries, status_filter=status, spending=await self.spending(principal))

    async def wait(
        self,
        task_id: str,
        *,
        timeout_seconds: float | None = None,
        download: bool = True,
        report: ReportProgress = _no_progress,
        principal: Principal = LOCAL_PRINCIPAL,
    ) -> WaitResult:
        """Wait for the task until it ends or the timeout passes; save its videos when asked."""
        timeout = timeout_seconds or self.settings.wait_timeout_seconds
        entry = await self.entry_for(task_id, principal)
        if entry is not None and entry.submit_state == "unknown":
            raise SubmitOutcomeUnknownError(_unknown_outcome_message(entry))
        if entry is not None and entry.is_terminal:  # nothing left to wait for: no request needed
            outcome = WaitOutcome(entry.to_snapshot(), timed_out=False, waited_seconds=0.0)
            await report(100.0, f"{entry.status} (from the task journal)")
        else:
            self._owners[task_id] = principal
            outcome = await wait_for_task(
                self.pollers,
                task_id,
                timeout_seconds=timeout,
                report=report,
                heartbeat_seconds=self.settings.progress_interval_seconds,
                model=entry.model if entry is not None else None,
                typical_seconds=await self._typical_seconds(entry),
            )
        snapshot = outcome.snapshot
        source: Literal["apimp", "journal"] = "apimp"
        if snapshot is None:  # APIMP never answered in time: the journal's last word, or nothing
            snapshot, source = await self._last_known(task_id, outcome, principal), "journal"
        saving = SaveOutcome()
        if download and snapshot.status == "finished":  # saved within what is left of the deadline
            folder = principal.download_dir(self.settings.download_dir)
            saving = await self.saver.save(snapshot, folder, within_seconds=timeout - outcome.waited_seconds)
        next_step = STILL_SAVING if saving.in_progress else _next_step(snapshot, timed_out=outcome.timed_out)
        unreachable_since = None
        if outcome.unreachable_for_seconds is not None and outcome.timed_out:
            unreachable_since = _utc_seconds_ago(outcome.unreachable_for_seconds)
            next_step = f"{_unreachable_note(outcome, unreachable_since)} {next_step}"
        elif outcome.last_error is not None and outcome.timed_out:
            next_step = f"The last status check failed ({outcome.last_error}). {next_step}"
        report_ = TaskReport.from_snapshot(snapshot, next_step, source=source)
        return WaitResult(
            **report_.model_dump(),
            done=snapshot.is_terminal,
            timed_out=outcome.timed_out,
            waited_seconds=round(outcome.waited_seconds, 3),
            saved_videos=saving.saved,
            download_error=saving.error,
            saving_in_background=saving.in_progress,
            upstream_unreachable_since=unreachable_since,
            last_error=outcome.last_error,
        )

    async def _typical_seconds(self, entry: JournalEntry | None) -> float:
        """How long the task should take, learned from the journal's history (cached a while)."""
        model, request = (entry.model, entry.request) if entry is not None else (None, None)
        key = (model, generation_format(request))
        now = self.pollers.clock.now()
        cached = self._typical_cache.get(key)
        if cached is None or now - cached[0] > defaults.TYPICAL_DURATION_CACHE_SECONDS:
            try:
                learned = (await learned_typical_duration(self.journal, model, request)).seconds
            except Exception as exc:  # a journal that cannot answer only costs the learning
                logger.warning("typical durations not learned: %s", describe_failure(exc))
                learned = typical_duration(model).seconds
            cached = self._typical_cache[key] = (now, learned)
        return cached[1]

    async def _last_known(self, task_id: str, outcome: WaitOutcome, principal: Principal) -> TaskSnapshot:
        """The journal's last status of a task APIMP did not answer about; unreachable if it has none."""
        with reading_the_journal(f"find the last status of task {task_id}"):
            entry = await self.journal.get(task_id, principal=principal.id)
        if entry is not None and entry.task_id is not None and entry.submit_state == "accepted":
            return entry.to_snapshot()
        last_error = f" The last error: {outcome.last_error}." if outcome.last_error else ""
        raise UpstreamUnreachableError(
            f"APIMP is unreachable: it gave no answer about task {task_id} within "
            f"{outcome.waited_seconds:.0f} s, and this server has no record of the task.{last_error} "
            "Nothing was submitted or charged by this call; calling wait_for_video again later is safe."
        )


@contextmanager
def reading_the_journal(purpose: str) -> Iterator[None]:
    """A journal that cannot answer (the disk, the database or its pool) is told plainly, for what,
    and that nothing was sent: the SDK would otherwise report an unexpected error and no more."""
    try:
        yield
    except Exception as exc:
        failure = describe_failure(exc)
        logger.warning("the task journal could not be read to %s: %s", purpose, failure)
        raise JournalUnavailableError(
            f"The task journal could not be read to {purpose} ({failure}). Nothing was sent to APIMP. "
            "Try again in a moment; if it keeps failing, the server's operator should check APIMP_JOURNAL."
        ) from exc


def _coordination(settings: Settings, journal: TaskStore) -> Coordination | None:
    """A store shared by instances (PostgreSQL) coordinates their pollers; otherwise each polls alone."""
    if not isinstance(journal, PollingLeases):
        return None
    return ClusterCoordination(
        journal,
        journal,
        lease_seconds=settings.poll_lease_seconds,
        reread_seconds=settings.cluster_reread_seconds,
    )


def _utc_seconds_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _unreachable_note(outcome: WaitOutcome, since: str) -> str:
    last_error = f"; the last error: {outcome.last_error}" if outcome.last_error else ""
    seconds = outcome.unreachable_for_seconds or 0.0
    return (
        f"APIMP has been unreachable since {since} ({seconds:.0f} s{last_error}). "
        "The status shown is the last one known. The task itself is unaffected: calling "
        "wait_for_video again is safe and never resubmits or pays twice."
    )


def _unknown_outcome_message(entry: JournalEntry) -> str:
    return (
        f"The submit recorded as {entry.entry_id} ({entry.model}, at {entry.recorded_at}) got no clear "
        "answer from APIMP, so whether the task exists is unknown and it has no task id. It was not "
        "resubmitted. Check your APIMP dashboard before submitting the same request again."
    )


def _next_step(snapshot: TaskSnapshot, *, timed_out: bool) -> str:
    return _next_step_for(snapshot.status, timed_out=timed_out)


def _next_step_for(status: str, *, timed_out: bool) -> str:
    if status == "finished":
        return (
            "The video is ready. Result URLs may expire: keep the saved file (wait_for_video saves it "
            "when download is on) or download the URL soon."
        )
    if status == "failed":
        return "The task failed and will not produce a video. Adjust the request and submit a new task."
    if timed_out:
        return (
            "The wait timed out; the task is still running (this is not a failure). Call "
            "wait_for_video again with the same task_id to keep waiting."
        )
    return "Still in progress. Call wait_for_video with this task_id to wait for the result."
