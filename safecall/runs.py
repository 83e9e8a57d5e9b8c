"""Weekly runs: launching (one per campaign per week), enrolment, the dialling lease and status.

What becomes of each call is lifecycle.py's."""

from __future__ import annotations

from datetime import date, datetime
from typing import cast

import sqlalchemy as sa
from sqlmodel import col, select

from safecall.campaign import CampaignDef
from safecall.corereads import RunStatus, count_status  # noqa: F401 (RunStatus re-exported)
from safecall.errors import NoCallingDayError
from safecall.history import FirstCallOrder, order_first_calls
from safecall.lifecycle import dialable_clause, enrol
from safecall.policy import FIRST_CALL_HORIZON, CallingCalendar, first_call_of_week, week_start
from safecall.runlocks import acquire_run_lock, get_run, lock_owner_id, release_run_lock, renew_run_lock  # noqa: F401 (re-exported)
from safecall.store import CampaignRun, Database, MemberState, Person, RunMember, RunState, audit, stored_id


def _target_filter(campaign: CampaignDef) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if campaign.targets.teams:
        conditions.append(col(Person.team).in_(campaign.targets.teams))
    if campaign.targets.dongs:
        conditions.append(col(Person.dong).in_(campaign.targets.dongs))
    if campaign.targets.risks:
        conditions.append(col(Person.risk).in_(campaign.targets.risk_levels()))
    return conditions


def launch_run(
    db: Database,
    campaign: CampaignDef,
    calendar: CallingCalendar,
    *,
    now: datetime,
    label: str = "weekly",
    only_people: list[int] | None = None,
    week: date | None = None,
    order: FirstCallOrder | None = None,
    rules: str | None = None,
) -> tuple[CampaignRun, bool]:
    """This week's run of the campaign (or week `week`'s, or an ad-hoc one under `label` for `only_people`),
    created with its members if new.

    A week is never skipped: when its slot is a holiday or a closed day, or its window is over, the first calls
    move to the next calling day, even one in the next week (the run keeps its own week_start, and may be open
    beside next week's run). Raises NoCallingDayError when no calling day comes within FIRST_CALL_HORIZON.
    `order`: give the first calls times by last weeks' outcomes (safecall/ordering.py); None: all at the first call
    time.
    `rules`: the campaign's rules as the run keeps them (Services.rules_snapshot); None: taken from the files when
    the run is first dialled.
    """
    week = week or week_start(now, calendar.tz)
    with db.transaction() as session:
        existing = session.exec(
            select(CampaignRun).where(
                CampaignRun.campaign == campaign.name, CampaignRun.week_start == week, CampaignRun.label == label
            )
        ).first()
        if existing:
            return existing, False
        first_call = first_call_of_week(calendar, week, campaign.schedule.weekday, campaign.schedule.start, now=now)
        if first_call is None:
            raise NoCallingDayError(
                f"campaign {campaign.name!r}: no calling day within {FIRST_CALL_HORIZON.days} days "
                f"after the slot of the week of {week}; "
                f"check its window (weekdays, hours) and skip_holidays in campaigns/{campaign.name}.toml"
            )
        run = CampaignRun(
            campaign=campaign.name, week_start=week, label=label, launched_at=now, first_call_at=first_call, rules=rules
        )
        session.add(run)
        session.flush()
        today = now.astimezone(calendar.tz).date()
        # People still being called by another open run of the campaign (last week's, whose first calls may have
        # moved past a holiday into this week) are left to it, so nobody is called by two runs at once.
        still_open = (
            select(RunMember.person_id)
            .join(CampaignRun, col(CampaignRun.id) == RunMember.run_id)
            .where(
                CampaignRun.campaign == campaign.name,
                CampaignRun.status == RunState.OPEN,
                col(RunMember.state).in_([MemberState.PENDING, MemberState.IN_CALL]),
            )
        )
        chosen = [*_target_filter(campaign), *dialable_clause(today), col(Person.id).not_in(still_open)]
        if only_people is not None:
            chosen.append(col(Person.id).in_(only_people))
        enrolled = enrol(session, run_id=stored_id(run), first_call=first_call, where=chosen)
        if order is not None:
            order_first_calls(session.connection(), run, first_call, calendar, order)
        audit(
            session,
            at=now,
            action="campaign.launch",
            subject=f"run {run.id}",
            detail=f"campaign={campaign.name} week={week} label={label} people={enrolled}",
        )
    return run, True


def run_status(db: Database, run_id: int) -> RunStatus:
    """The run's counts, read at one moment (a unit of its own, or the caller's)."""
    with db.unit(read_only=True) as unit, unit.session() as session:
        return count_status(get_run(session, run_id), session.connection())


def open_run_campaigns(db: Database) -> list[tuple[int, str]]:
    """(run id, campaign) of every open run: what a dialer asks for often, so plain rows."""
    with db.session() as session:
        rows = session.exec(
            select(col(CampaignRun.id), col(CampaignRun.campaign))
            .where(CampaignRun.status == RunState.OPEN)
            .order_by(col(CampaignRun.id))
        )
        return cast("list[tuple[int, str]]", list(rows))  # ids read back are never None


def list_runs(db: Database, campaign: str | None = None) -> list[CampaignRun]:
    with db.session() as session:
        query = select(CampaignRun).order_by(col(CampaignRun.id))
        if campaign:
            query = query.where(CampaignRun.campaign == campaign)
        return list(session.exec(query))
