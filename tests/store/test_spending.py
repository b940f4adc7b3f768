"""The estimates a store keeps with each submit, and their sums for the budgets: on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from apimp_video_mcp.access.principals import LOCAL_PRINCIPAL_ID as LOCAL
from apimp_video_mcp.store import TaskStore, task_store_for

pytestmark = pytest.mark.anyio

VEO = "veo-3.1-generate-preview"


@pytest.fixture
async def journal(location: str) -> AsyncIterator[TaskStore]:
    opened = task_store_for(location)
    yield opened
    await opened.close()


async def test_the_estimate_is_kept_with_the_entry(journal: TaskStore) -> None:
    entry_id = await journal.record_submission(VEO, {}, principal=LOCAL, cost=3.2, currency="USD")

    entry = await journal.get(entry_id, principal=LOCAL)

    assert entry is not None
    assert (entry.estimated_cost, entry.cost_currency) == (3.2, "USD")


async def test_sent_submits_count_whatever_their_outcome_and_discarded_ones_do_not(
    journal: TaskStore,
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    unknown = await journal.record_submission(VEO, {}, principal=LOCAL, cost=3.2, currency="USD")
    await journal.record_unknown_outcome(unknown)  # it may have been billed
    await journal.record_submission(VEO, {}, principal=LOCAL, cost=0.6, currency="USD")  # being sent now
    discarded = await journal.record_submission(VEO, {}, principal=LOCAL, cost=1.0, currency="USD")
    await journal.discard(discarded)  # provably created nothing
    await journal.record_submission(VEO, {}, principal=LOCAL, cost=500, currency="credits")
    await journal.record_submission(VEO, {}, principal=LOCAL)  # no estimate (an older entry)

    assert await journal.spent_since(start, "USD", principal=LOCAL) == pytest.approx(3.8)
    assert await journal.spent_since(start, "credits", principal=LOCAL) == 500
    assert await journal.spent_since(start, "EUR", principal=LOCAL) == 0
    assert await journal.spent_since(datetime.now(UTC) + timedelta(minutes=1), "USD", principal=LOCAL) == 0


async def test_each_principal_spends_from_its_own_total(journal: TaskStore) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    await journal.record_submission(VEO, {}, principal="alice", cost=3.2, currency="USD")
    await journal.record_submission(VEO, {}, principal="bob", cost=0.6, currency="USD")

    assert await journal.spent_since(start, "USD", principal="alice") == pytest.approx(3.2)
    assert await journal.spent_since(start, "USD", principal="bob") == pytest.approx(0.6)
    assert await journal.spent_since(start, "USD", principal=LOCAL) == 0
