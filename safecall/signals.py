"""Signal-triggered checks: inactivity signs from outside data flag people for an ad-hoc check call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlmodel import or_, select

from safecall import phones
from safecall.errors import InputError, Message, message_of
from safecall.i18n import N_
from safecall.roster import _header_key, parse_date
from safecall.settings import Settings
from safecall.store import CampaignRun, Database, Person, Signal, audit, stored_id
from safecall.tables import LIMITS, Limits, read_table

COLUMNS = {
    "phone": ["전화번호", "연락처", "phone"],
    "person_id": ["person_id", "대상자번호"],
    "day": ["일자", "날짜", "date", "day"],
    "kind": ["종류", "kind"],
    "score": ["점수", "score"],
}
ALIASES = {_header_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases}


@dataclass
class SignalReport:
    rows: int
    added: int
    updated: int


def is_signal_header(cells: list[str]) -> bool:
    return sum(_header_key(cell) in ALIASES for cell in cells if cell) >= 2


def import_signals(
    db: Database, path: Path, settings: Settings, *, now: datetime, limits: Limits = LIMITS
) -> SignalReport:
    """All or nothing: each row names a known person (by phone or id), a date, a configured kind and a score 0-1."""
    table = read_table(path, is_signal_header, limits, header_hint="전화번호, 일자, 종류, 점수")
    rows, where = table.rows, table.source
    mapping = {}
    for title in table.header:
        name = ALIASES.get(_header_key(title))
        if name is None:
            raise InputError(
                N_("{where}: column {title!r}: unknown column (use 전화번호 or person_id, 일자, 종류, 점수)"),
                where=where,
                title=title,
            )
        mapping[name] = title
    missing = [n for n in ("day", "kind", "score") if n not in mapping] + (
        [] if {"phone", "person_id"} & set(mapping) else ["phone or person_id"]
    )
    if missing:
        raise InputError(N_("{where}: missing column(s): {columns}"), where=where, columns=", ".join(missing))
    problems, parsed = [], []
    with db.session() as session:
        for row in rows:

            def cell(name, row=row):
                value = row.values.get(mapping.get(name, ""), None)
                return "" if value is None else str(value).strip()

            def problem(name, message, row=row):
                problems.append(
                    Message(
                        N_("row {row}, column {column!r}: {problem}"),
                        row=row.row,
                        column=mapping.get(name, name),
                        problem=message,
                    )
                )

            person = None
            if cell("person_id"):
                person = session.get(Person, int(cell("person_id"))) if cell("person_id").isdigit() else None
                if person is None:
                    problem("person_id", Message(N_("no person with id {id!r}"), id=cell("person_id")))
            else:
                try:
                    number = phones.normalise(cell("phone"))
                    person = session.exec(
                        select(Person).where(or_(Person.phone == number, Person.phone2 == number))
                    ).first()
                    if person is None:
                        problem(
                            "phone", Message(N_("no person on the roster has {number}"), number=phones.national(number))
                        )
                except ValueError as exc:
                    problem("phone", message_of(exc))
            try:
                day = parse_date(row.values.get(mapping["day"]))
            except ValueError as exc:
                problem("day", message_of(exc))
                day = None
            kind = cell("kind")
            if kind not in settings.signals.thresholds:
                problem(
                    "kind",
                    Message(
                        N_("unknown kind {kind!r} (configured: {kinds})"),
                        kind=kind,
                        kinds=", ".join(sorted(settings.signals.thresholds)),
                    ),
                )
            try:
                score = float(cell("score"))
                if not 0 <= score <= 1:
                    raise ValueError
            except ValueError:
                problem("score", Message(N_("{score!r} is not a score between 0 and 1"), score=cell("score")))
                score = None
            if person and day and score is not None and kind in settings.signals.thresholds:
                parsed.append((stored_id(person), day, kind, score))
    if problems:
        raise InputError(
            N_("{path}: {count} problem(s); nothing was imported"), problems, path=where, count=len(problems)
        )
    report = SignalReport(rows=len(parsed), added=0, updated=0)
    with db.transaction() as session:
        for person_id, day, kind, score in parsed:
            existing = session.exec(
                select(Signal).where(Signal.person_id == person_id, Signal.day == day, Signal.kind == kind)
            ).first()
            if existing:
                existing.score, existing.imported_at = score, now
                session.add(existing)
                report.updated += 1
            else:
                session.add(Signal(person_id=person_id, day=day, kind=kind, score=score, imported_at=now))
                report.added += 1
        audit(
            session,
            at=now,
            action="signals.import",
            subject=path.name,
            detail=f"added={report.added} updated={report.updated}",
        )
    return report


def flagged_people(db: Database, settings: Settings, day: date, kinds: dict[str, float] | None = None) -> list[int]:
    """People with a signal on `day` at or above its kind's threshold (`kinds`, default the configured ones)."""
    thresholds = settings.signals.thresholds if kinds is None else kinds
    with db.session() as session:
        signals = session.exec(select(Signal).where(Signal.day == day))
        return sorted({s.person_id for s in signals if s.score >= thresholds.get(s.kind, 2)})


@dataclass
class SignalCheck:
    run: CampaignRun
    created: bool
    people: int


def launch_signal_check(
    services, campaign_name: str, day: date, *, kinds: dict[str, float] | None = None, label: str | None = None
) -> SignalCheck | None:
    """An ad-hoc run for the people flagged by `day`'s signals; None when nobody is flagged. `kinds` and `label`:
    other signals (a weather advisory's) than the configured ones, and their own run."""
    from safecall.runs import launch_run  # only where a check is launched: signal imports need no engine

    definition = services.campaign(campaign_name)
    people_ids = flagged_people(services.db, services.instance.settings, day, kinds)
    if not people_ids:
        return None
    run, created = launch_run(
        services.db,
        definition,
        definition.calendar(services.instance),
        now=services.now(),
        label=label or f"signals-{day}",
        only_people=people_ids,
        rules=services.rules_snapshot(campaign_name),
    )
    return SignalCheck(run, created, len(people_ids))
