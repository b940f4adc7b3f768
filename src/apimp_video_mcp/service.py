"""The video service: submit, check, wait and save. Plain async Python with no MCP in sight.

The MCP tools are thin adapters over this class, so everything a tool does can be used and
tested without a protocol in between.

Every call is made for a principal (`principals`): the owner of the tasks it creates, whose
tasks alone it may see, whose APIMP key (if it has its own) it uses upstream, whose folder its
videos are saved in and whose limits it counts against. It defaults to the local principal, the
one user of a stdio server.

`VideoService` is the facade the server calls, and the place its parts are wired together over
one client, one journal and the settings. Each path with rules of its own has a module named
for it: `submits` (checked, journaled first, sent once, settled whatever happens), `waits`
(following a task to its end within a deadline, then saving it) and `lookups` (a principal's
tasks in the journal and at APIMP). What is left here is short enough to need no module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apimp_video_mcp import defaults
from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL, Principal
from apimp_video_mcp.background import background_tasks
from apimp_video_mcp.config import Settings
from apimp_video_mcp.costs.budget import Spending
from apimp_video_mcp.costs.pricing import CostEstimate
from apimp_video_mcp.costs.quotes import Quoter
from apimp_video_mcp.downloads.saving import VideoSaver
from apimp_video_mcp.local_files import LocalFilePolicy
from apimp_video_mcp.lookups import TaskLookups, reading_the_journal
from apimp_video_mcp.models import SubmitRequest, TaskSnapshot
from apimp_video_mcp.polling.coordination import ClusterCoordination, Coordination, PollingLeases
from apimp_video_mcp.polling.durations import typical_duration
from apimp_video_mcp.polling.pollers import AdaptiveSchedule, Clock, PollerHub, ReportProgress
from apimp_video_mcp.polling.sharing import SharedStatus
from apimp_video_mcp.results import CostQuote, SubmitResult, TaskList, TaskReport, UploadResult, WaitResult
from apimp_video_mcp.store import EntryStatus, JournalEntry, TaskStore
from apimp_video_mcp.store.retention import JournalRetention
from apimp_video_mcp.store.write_retry import JournalRetry
from apimp_video_mcp.submits import Submitter
from apimp_video_mcp.upstream.client import ApimpClient
from apimp_video_mcp.upstream.uploads import ImageUploader
from apimp_video_mcp.waits import Waiter, next_step_for, no_progress


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
        self.journal_retry = JournalRetry(clock=clock)
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
        # Whose each task is and what this process has seen of it, for every status look-up.
        self.lookups = TaskLookups(journal, self.client_for)
        # One poller per task for the whole process: every waiter on a task shares its requests.
        self.pollers = PollerHub(
            self.lookups.poll_status,
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
        self.submitter = Submitter(
            settings,
            journal,
            costs=self.costs,
            journal_retry=self.journal_retry,
            client_for=self.client_for,
            uploader_for=self._uploader,
        )
        self.waiter = Waiter(settings, journal, self.lookups, self.pollers, self.saver)

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
        then create the task (never twice): see `submits`.

        `approved` says a person accepted this price (the server asked them); without it, an
        estimate above the confirmation threshold needs a `max_cost` covering it.
        """
        return await self.submitter.submit(request, principal=principal, max_cost=max_cost, approved=approved)

    async def upload_image(self, source: str, *, principal: Principal = LOCAL_PRINCIPAL) -> UploadResult:
        """Upload one local image (from the principal's allowed folders) and return its hosted URL."""
        return await self._uploader(principal).upload(source)

    async def quote(
        self, request: SubmitRequest, *, principal: Principal = LOCAL_PRINCIPAL, max_cost: float | None = None
    ) -> CostQuote:
        """Price a request with exactly the checks of submit (rules, files, caps), sending nothing."""
        return await self.submitter.quote(request, principal=principal, max_cost=max_cost)

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

    async def get_status(
        self, task_id: str, *, refresh: bool = False, principal: Principal = LOCAL_PRINCIPAL
    ) -> TaskReport:
        """The task's status: from the journal when it has ended (unless `refresh`), else from APIMP."""
        # A task this principal has seen running cannot have ended unseen: no journal read needed.
        if not self.lookups.seen_running_by(task_id, principal):
            entry = await self.lookups.entry_with_a_task(task_id, principal)
            if entry is not None and entry.is_terminal and not refresh:
                return TaskReport.from_entry(entry, next_step_for(entry.status, timed_out=False))
        snapshot = await self.shared_status(task_id, principal, refresh=refresh)
        return TaskReport.from_snapshot(snapshot, next_step_for(snapshot.status, timed_out=False))

    async def shared_status(
        self, task_id: str, principal: Principal, *, refresh: bool = False
    ) -> TaskSnapshot:
        """The task's status, shared with concurrent callers (see `polling.sharing`); the caller has
        checked the task is the principal's (`entry_for`), so whoever asks first asks for everyone."""
        return await self.statuses.get(
            task_id, lambda: self.fetch_status(task_id, principal), refresh=refresh
        )

    async def entry_for(
        self, task_id: str, principal: Principal, *, with_events: bool = False
    ) -> JournalEntry | None:
        """The principal's journal entry for a task, or None for a task it may still ask APIMP about
        (another's is refused without telling whether it exists: see `TaskLookups.entry_for`)."""
        return await self.lookups.entry_for(task_id, principal, with_events=with_events)

    async def fetch_status(
        self, task_id: str, principal: Principal = LOCAL_PRINCIPAL, *, retry: bool = True
    ) -> TaskSnapshot:
        """Ask APIMP (with the principal's key), and write what it says through to the journal (when
        it says something new). The caller has checked the task is the principal's (`entry_for`)."""
        return await self.lookups.fetch_status(task_id, principal, retry=retry)

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
        report: ReportProgress = no_progress,
        principal: Principal = LOCAL_PRINCIPAL,
    ) -> WaitResult:
        """Wait for the task until it ends or the timeout passes; save its videos when asked (see
        `waits`)."""
        return await self.waiter.wait(
            task_id, timeout_seconds=timeout_seconds, download=download, report=report, principal=principal
        )


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
