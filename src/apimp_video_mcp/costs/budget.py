"""Spending per day and per month, and the caps it is held to (APIMP_BUDGET_DAILY, _MONTHLY).

What counts as spent is the estimate of every submit the journal holds that was sent or is being
sent: accepted tasks, and submits whose outcome is unknown (they may have been billed). A submit
that provably created nothing leaves the journal, and so the totals. Only estimates in the price
table's current currency are summed, so switching to credits starts the totals afresh.

The day and the month begin at midnight in APIMP_BUDGET_TIMEZONE (UTC unless set): a person's
"today" is their own, so the zone is theirs to choose.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from pydantic import BaseModel, Field

from apimp_video_mcp.costs.pricing import CostEstimate, PriceTable


def period_starts(now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """When today and this month began in `zone`, as UTC instants."""
    local = now.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    # Midnight may not exist (or exist twice) on a DST change; a round trip through UTC settles it.
    return day.astimezone(UTC), month.astimezone(UTC)


class Spending(BaseModel):
    """The estimated totals for today and this month, beside the caps, in the price table's currency."""

    currency: str
    today: float = Field(description="Estimated cost of today's submits.")
    this_month: float = Field(description="Estimated cost of this month's submits.")
    daily_budget: float | None = Field(description="APIMP_BUDGET_DAILY, if set.")
    monthly_budget: float | None = Field(description="APIMP_BUDGET_MONTHLY, if set.")
    remaining_today: float | None = Field(description="What today's budget still allows (never below 0).")
    remaining_this_month: float | None = Field(description="What this month's budget still allows.")
    timezone: str = Field(description="The zone whose midnight starts the day and the month.")
    day_started_at: str = Field(description="Start of today, UTC, ISO-8601.")
    month_started_at: str = Field(description="Start of this month, UTC, ISO-8601.")
    display: str = Field(description="The totals as a person reads them; all figures are estimates.")

    @classmethod
    def of(
        cls,
        table: PriceTable,
        *,
        today: float,
        this_month: float,
        daily_budget: float | None,
        monthly_budget: float | None,
        timezone: str,
        starts: tuple[datetime, datetime],
    ) -> Spending:
        remaining_today = _remaining(daily_budget, today)
        remaining_month = _remaining(monthly_budget, this_month)
        return cls(
            currency=table.currency,
            today=round(today, 6),
            this_month=round(this_month, 6),
            daily_budget=daily_budget,
            monthly_budget=monthly_budget,
            remaining_today=remaining_today,
            remaining_this_month=remaining_month,
            timezone=timezone,
            day_started_at=starts[0].isoformat(),
            month_started_at=starts[1].isoformat(),
            display=f"Estimated spend today: {_against(table, today, daily_budget, remaining_today)}; "
            f"this month: {_against(table, this_month, monthly_budget, remaining_month)}.",
        )

    def including(self, cost: CostEstimate, table: PriceTable) -> Spending:
        """These totals with one more submit counted (without asking the journal again)."""
        return Spending.of(
            table,
            today=self.today + cost.amount,
            this_month=self.this_month + cost.amount,
            daily_budget=self.daily_budget,
            monthly_budget=self.monthly_budget,
            timezone=self.timezone,
            starts=(
                datetime.fromisoformat(self.day_started_at),
                datetime.fromisoformat(self.month_started_at),
            ),
        )

    def refusal(self, cost: CostEstimate, table: PriceTable) -> str | None:
        """Why `cost` would break a budget (with spent and remaining figures), or None when it fits."""
        for period, unit, spent, budget, remaining in (
            ("daily", "day", self.today, self.daily_budget, self.remaining_today),
            ("monthly", "month", self.this_month, self.monthly_budget, self.remaining_this_month),
        ):
            if budget is not None and remaining is not None and spent + cost.amount > budget + 1e-9:
                return (
                    f"This video ({cost.display}: {cost.shape}) would exceed the {period} budget of "
                    f"{table.format(budget)} (APIMP_BUDGET_{period.upper()}): about "
                    f"{table.format(spent)} is already spent, {table.format(remaining)} remains. Nothing "
                    "was sent. Choose a shorter, lower-resolution or cheaper request that fits, or wait "
                    f"for the next {unit} (it begins at midnight {self.timezone}); all figures are estimates."
                )
        return None


def _remaining(budget: float | None, spent: float) -> float | None:
    return None if budget is None else round(max(budget - spent, 0.0), 6)


def _against(table: PriceTable, spent: float, budget: float | None, remaining: float | None) -> str:
    if budget is None or remaining is None:
        return f"about {table.format(spent)}"
    return f"about {table.format(spent)} of {table.format(budget)} ({table.format(remaining)} left)"
