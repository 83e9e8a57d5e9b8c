"""Home-visit and callback lists: priority order, and CSV/XLSX files visit teams open in Excel."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, func

from safecall import phones, sheets
from safecall.domain import PersonStatus, TaskKind, TaskStatus
from safecall.errors import InputError, Keyword, Message, NotFoundError
from safecall.glossary import COLUMN, REASON
from safecall.glossary import OUTCOME as OUTCOME_WORDS
from safecall.i18n import N_
from safecall.lifecycle import record_task_outcome
from safecall.store import (
    DISPOSITION_KOREAN,
    Attempt,
    Database,
    Disposition,
    Person,
    RunMember,
    VisitTask,
    audit,
    current_actor,
)

OUTCOMES = ("safe", "not_home", "hospitalised", "emergency_services", "deceased", "moved")
# What the officer's call-back came to; called_no_answer keeps the callback open.
CALLBACK_OUTCOMES = ("called_safe", "called_referred", "called_no_answer")
OUTCOME_KOREAN = OUTCOME_WORDS
STAYS_OPEN = ("not_home", "called_no_answer")
# What happens next, shown to whoever saved the outcome ("김영수: 부재(재방문) 저장됨 — 내일 명단에 다시 올라갑니다").
NEXT_STEP = {
    "safe": "방문 명단에서 내려갑니다. 안심콜은 다음 주에도 갑니다",
    "not_home": "내일 명단에 다시 올라갑니다",
    "hospitalised": "{until}까지 안심콜을 쉽니다",
    "emergency_services": "방문 명단에서 내려갑니다. 안심콜은 다음 주에도 갑니다",
    "moved": "안심콜 대상에서 빠집니다",
    "deceased": "안심콜 대상에서 빠집니다",
    "called_safe": "회신 명단에서 내려갑니다",
    "called_referred": "회신 명단에서 내려갑니다",
    "called_no_answer": "회신 명단에 남습니다. 다시 걸어 주세요",
    "number_fixed": "다음 전화부터 새 번호로 겁니다",
    "no_contact": "전화로 확인할 수 없어 방문 명단에 올라갑니다",
}
# Bounds of a field record, the same on the web and in the CLI (check_record).
NOTE_MAX_CHARS = 2000
HOSPITAL_MAX_DAYS = 180  # a longer stay is the welfare officer's to record: it stops the weekly calls for that long
OFFICER_HOSPITAL_MAX_DAYS = (
    365  # no pause is unbounded: beyond a year the officer closes the person with a reason instead
)
HOSPITAL_DEFAULT_DAYS = 28
# number: an officer's task to fix a number that proved not to exist (delivered like a callback list, to the officer)
KINDS = ("visit", "callback", "number")
NUMBER_OUTCOMES = ("number_fixed",)
RISK_LABEL = {1: "하", 2: "중", 3: "상"}
COLUMNS = [
    (key, COLUMN[key])
    for key in (
        "rank",
        "task",
        "team",
        "overdue",
        "name",
        "phone",
        "phone2",
        "address",
        "dong",
        "guardian",
        "guardian_phone",
        "reason",
        "notes",
        "weeks_without_ack",
        "answered_without_key",
        "risk",
        "attempts",
        "last_ack",
        "since",
        "moved_from",
        "risk_speech",
    )
]


@dataclass
class VisitRow:
    task: int
    team: str
    overdue: str
    name: str
    phone: str
    phone2: str
    address: str
    dong: str
    guardian: str
    guardian_phone: str
    weeks_without_ack: int
    answered_without_key: str
    risk: str
    attempts: str
    last_ack: str
    since: str
    rank: int = 0
    note: str = ""  # what earlier visits to this task found (e.g. not home yesterday)
    person_id: int = 0
    moved_from: str = ""  # "3팀에서 이관": the person moved here from another team's dong with the task open
    risk_speech: str = ""  # "위험 발언": the spoken answer had words of suicide or an emergency
    reason: str = ""  # why the person is on the list, in the glossary's words
    notes: str = ""  # every earlier visit note of the person, newest first: this task's, then earlier visit tasks'

    def cells(self) -> list:
        return [getattr(self, key) for key, _ in COLUMNS]


def open_task_rows(
    db: Database, tz: ZoneInfo, *, on: date, kind: str = "visit", team: str | None = None, teams: Sequence[str] = ()
) -> dict[str, list[VisitRow]]:
    """Open tasks created by `on`, one list per team, most urgent first.
    Every team in `teams` gets a list, empty or not."""
    by_team: dict[str, list[VisitRow]] = {name: [] for name in teams if not team or name == team}
    for row in task_rows(db, tz, on=on, kind=kind, team=team)[1]:
        by_team.setdefault(row.team, []).append(row)
    for rows in by_team.values():
        for rank, row in enumerate(rows, start=1):
            row.rank = rank
    return dict(sorted(by_team.items()))


# The columns a list row shows, read as plain rows: building ORM objects for the tasks, people and attempts of a page
# cost more than the queries themselves (BENCHMARKS.md, "The team's list under load").
TASK_COLUMNS = (
    col(VisitTask.id),
    col(VisitTask.kind),
    col(VisitTask.team),
    col(VisitTask.overdue),
    col(VisitTask.weeks_without_ack),
    col(VisitTask.answered_without_key),
    col(VisitTask.created_on),
    col(VisitTask.note),
    col(VisitTask.moved_from),
    col(VisitTask.risk_speech),
)
PERSON_COLUMNS = (
    sa.label("person_id", col(Person.id)),
    col(Person.name),
    col(Person.phone),
    col(Person.phone2),
    col(Person.address),
    col(Person.dong),
    col(Person.guardian_name),
    col(Person.guardian_phone),
    col(Person.risk),
)
ATTEMPT_COLUMNS: tuple[sa.Label, ...] = (
    col(Attempt.number).label("attempt_number"),
    col(Attempt.placed_at).label("attempt_placed_at"),
    col(Attempt.disposition).label("attempt_disposition"),
    col(Attempt.phone).label("attempt_phone"),
)
# Most urgent first: words of suicide or an emergency in the answer (위험 발언), overdue, more weeks unanswered,
# answered without a key, higher risk, older, then by name.
URGENCY = (
    col(VisitTask.risk_speech).desc(),
    col(VisitTask.team),
    col(VisitTask.overdue).desc(),
    col(VisitTask.weeks_without_ack).desc(),
    col(VisitTask.answered_without_key).desc(),
    col(Person.risk).desc(),
    col(VisitTask.created_on),
    col(Person.name),
    col(VisitTask.id),
)
NO_LIMIT = 2**62  # LIMIT takes a number on SQLite and PostgreSQL alike

_DISPOSITION_TEXT: dict[str, str] = {str(key): text for key, text in DISPOSITION_KOREAN.items()}  # as stored


class ListedAttempt(NamedTuple):  # a tuple: a task's attempts key the cache of their description, and hash in C
    number: int
    placed_at: datetime
    disposition: str | None
    phone: str


def _open_tasks(by_team: bool) -> list:
    """The open tasks of a kind due by :on (and of :team)."""
    on = sa.bindparam("on", type_=sa.Date)
    return [
        col(VisitTask.status) == TaskStatus.OPEN,
        col(VisitTask.kind) == sa.bindparam("kind"),
        col(VisitTask.created_on) <= on,
        sa.or_(col(VisitTask.revisit_on).is_(None), col(VisitTask.revisit_on) <= on),
    ] + ([col(VisitTask.team) == sa.bindparam("team")] if by_team else [])


@functools.cache
def _page_query(by_team: bool) -> sa.Select:
    """One statement for a page: how many are open; the page's tasks (found in order on the ids alone: a narrow sort is
    ~2x faster on SQLite), each with its person, their last acknowledgement and one row per attempt of the task's run.
    Built once: it runs prepared (store/prepared.py), without SQLAlchemy's work a statement."""
    page = (
        sa.select(col(VisitTask.id))
        .join(Person, col(Person.id) == col(VisitTask.person_id))
        .where(*_open_tasks(by_team))
        .order_by(*URGENCY)
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset"))
        .cte("page")
    )
    total = sa.select(func.count()).select_from(VisitTask).where(*_open_tasks(by_team)).scalar_subquery()
    last_ack = (
        sa.select(func.max(col(Attempt.keyed_at)))
        .join(RunMember, col(RunMember.id) == col(Attempt.member_id))
        .where(col(RunMember.person_id) == col(Person.id), col(Attempt.disposition) == Disposition.ACKNOWLEDGED)
        .scalar_subquery()
    )
    return (
        sa.select(total.label("total"), *TASK_COLUMNS, *PERSON_COLUMNS, last_ack.label("last_ack"), *ATTEMPT_COLUMNS)
        .select_from(page)
        .join(VisitTask, col(VisitTask.id) == page.c.id)
        .join(Person, col(Person.id) == col(VisitTask.person_id))
        .outerjoin(
            RunMember,
            sa.and_(
                col(RunMember.run_id) == col(VisitTask.run_id), col(RunMember.person_id) == col(VisitTask.person_id)
            ),
        )
        .outerjoin(Attempt, col(Attempt.member_id) == col(RunMember.id))
        .order_by(*URGENCY, col(Attempt.number))
    )


@functools.cache
def _count_query(by_team: bool) -> sa.Select:
    return sa.select(func.count()).select_from(VisitTask).where(*_open_tasks(by_team))


def task_rows(
    db: Database,
    tz: ZoneInfo,
    *,
    on: date,
    kind: str = "visit",
    team: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    notes: bool = True,
) -> tuple[int, list[VisitRow]]:
    """(how many are open, the open tasks from `offset`, at most `limit`), most urgent first, ranked from offset + 1.

    One statement for the tasks (and a count when the page is past the end); `notes`: also every earlier visit note
    of each person (the exported lists' column; a page shows them its own way).
    """
    if kind not in KINDS:
        raise InputError(N_("unknown list kind {kind!r} (use visit or callback)"), kind=kind)
    params = {"kind": kind, "on": on, "limit": NO_LIMIT if limit is None else limit, "offset": offset}
    if team:
        params["team"] = team
    with db.statements() as connection:
        found = db.prepared(_page_query(bool(team))).all(connection, params)
        total = found[0].total if found else db.prepared(_count_query(bool(team))).scalar(connection, params)
    tasks: list = []
    attempts: dict[int, list[ListedAttempt]] = {}
    for row in found:  # one row per attempt (one with none when the task has no attempts)
        if row.id not in attempts:
            tasks.append(row)
            attempts[row.id] = []
        if row.attempt_number is not None:
            attempts[row.id].append(
                ListedAttempt(row.attempt_number, row.attempt_placed_at, row.attempt_disposition, row.attempt_phone)
            )
    earlier = {}
    if notes and tasks:
        with db.reading() as connection:
            earlier = visit_notes(connection, sorted({row.person_id for row in tasks}))
    rows = []
    national = phones.national
    for rank, task in enumerate(tasks, start=offset + 1):
        acked = task.last_ack
        rows.append(
            VisitRow(
                task=task.id,
                team=task.team,
                overdue="예" if task.overdue else "",
                name=task.name,
                phone=national(task.phone),
                phone2=national(task.phone2),
                address=task.address,
                dong=task.dong,
                guardian=task.guardian_name or "",
                guardian_phone=national(task.guardian_phone),
                weeks_without_ack=task.weeks_without_ack,
                answered_without_key="예" if task.answered_without_key else "",
                risk=RISK_LABEL.get(task.risk, str(task.risk)),
                attempts=_attempts_text(tuple(attempts[task.id]), tz),
                last_ack=acked.astimezone(tz).date().isoformat() if acked else "없음",
                since=task.created_on.isoformat(),
                note=task.note or "",
                person_id=task.person_id,
                rank=rank,
                moved_from=moved_from_text(task.moved_from),
                risk_speech="위험 발언" if task.risk_speech else "",
                reason=list_reason(task, attempts[task.id]),
                notes="\n".join(
                    _newest_first(task.note) + [n for tid, n in earlier.get(task.person_id, []) if tid != task.id]
                ),
            )
        )
    return total, rows


def moved_from_text(team: str | None) -> str:
    return f"{team}에서 이관" if team else ""


class TaskFacts(Protocol):
    """What list_reason reads of a task: a VisitTask, or a row of TASK_COLUMNS."""

    @property
    def kind(self) -> TaskKind: ...
    @property
    def weeks_without_ack(self) -> int: ...
    @property
    def answered_without_key(self) -> bool: ...


def list_reason(task: TaskFacts, attempts: Sequence[ListedAttempt] | Sequence[Attempt]) -> str:
    """Why the person is on the list. A number that does not exist is said first: it is not a non-answer."""
    if task.kind == TaskKind.NUMBER:
        return REASON["number_check"]
    if task.kind == TaskKind.CALLBACK:
        return REASON["help_requested"]
    parts = []
    if any(a.disposition == Disposition.INVALID_NUMBER for a in attempts):
        parts.append(REASON["number_check"])
    if any(a.disposition not in (Disposition.INVALID_NUMBER, None) for a in attempts) or not attempts:
        parts.append(REASON["weeks_unanswered"].format(weeks=task.weeks_without_ack))
    if task.answered_without_key:
        parts.append(REASON["answered_no_key"])
    return ", ".join(parts)


def _newest_first(note: str | None) -> list[str]:
    return list(reversed(note.splitlines())) if note else []


def visit_notes(connection, person_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """person id -> (task id, note line) of their visit tasks, newest first. Officers' call-back notes are not here."""
    notes: dict[int, list[tuple[int, str]]] = {}
    for chunk in _chunks(person_ids):
        for task_id, person_id, note in connection.execute(
            sa.select(col(VisitTask.id), col(VisitTask.person_id), col(VisitTask.note))
            .where(
                col(VisitTask.person_id).in_(chunk),
                col(VisitTask.kind) == TaskKind.VISIT,
                col(VisitTask.note).is_not(None),
            )
            .order_by(col(VisitTask.id).desc())
        ):
            notes.setdefault(person_id, []).extend((task_id, line) for line in _newest_first(note))
    return notes


def _chunks(ids: list[int], size: int = 900):
    """IN lists below SQLite's bound-parameter limit."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@functools.lru_cache(maxsize=16_384)  # every view of a team's list describes the same attempts again
def _attempts_text(attempts: tuple, tz: ZoneInfo) -> str:
    """A task's attempts, oldest first, as the list shows them;
    `attempts` are rows (hashable, so they key the cache)."""
    return " / ".join(_describe_attempt(attempt, tz) for attempt in attempts)


def _describe_attempt(attempt: ListedAttempt, tz: ZoneInfo) -> str:
    when = attempt.placed_at.astimezone(tz).strftime("%m/%d %H:%M")
    result = "진행중" if attempt.disposition is None else _DISPOSITION_TEXT.get(attempt.disposition, "진행중")
    return f"{attempt.number}차 {when} {result} ({phones.national(attempt.phone)})"


def csv_bytes(rows: list[VisitRow]) -> bytes:
    return sheets.csv_bytes([title for _, title in COLUMNS], (row.cells() for row in rows))


def write_xlsx(path: Path, by_team: dict[str, list[VisitRow]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for team, rows in (by_team or {"(없음)": []}).items():
        sheet = workbook.create_sheet(title=_sheet_title(team))
        sheets.append_rows(sheet, [title for _, title in COLUMNS], (row.cells() for row in rows))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    _write_private(path, lambda handle: workbook.save(handle))


def _sheet_title(team: str) -> str:
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in team)
    return cleaned[:31] or "team"


def private_dir(path: Path) -> None:
    """Create `path` and any missing parents owner-only (mkdir's parents=True would not)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)


def _write_private(path: Path, write) -> None:
    """Lists hold personal data: owner-only files in an owner-only folder."""
    import os

    private_dir(path.parent)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        write(handle)


def export_lists(by_team: dict[str, list[VisitRow]], *, output: Path, fmt: str, on: date, kind: str) -> list[Path]:
    """A .csv or .xlsx path gets one file (a sheet per team for XLSX);
    any other path is a folder with a file per team."""
    if fmt not in ("csv", "xlsx"):
        raise InputError(N_("unknown format {fmt!r} (use table, csv or xlsx)"), fmt=fmt)
    if output.suffix.lower() in (".csv", ".xlsx"):
        if output.suffix.lower() != f".{fmt}":
            raise InputError(N_("{output}: the file ending does not match --format {fmt}"), output=output, fmt=fmt)
        if fmt == "csv":
            _write_private(output, lambda h: h.write(csv_bytes([r for rows in by_team.values() for r in rows])))
        else:
            write_xlsx(output, by_team)
        return [output]
    written = []
    for team, rows in by_team.items():
        path = output / f"{on.isoformat()}-{kind}-{team}.{fmt}"
        if fmt == "csv":
            _write_private(path, lambda h, rows=rows: h.write(csv_bytes(rows)))
        else:
            write_xlsx(path, {team: rows})
        written.append(path)
    return written


def check_record(
    *,
    outcome: str,
    note: str | None,
    until: date | None,
    today: date,
    officer: bool,
    officer_hint: str = N_("ask a welfare officer to record it"),
) -> None:
    """The bounds of a visit or call-back record, for the web and the CLI alike;
    an InputError naming each field at fault.

    No outcome is no record (a form saved untouched); a note holds at most NOTE_MAX_CHARS; a hospital stay pauses
    the calls from today up to HOSPITAL_MAX_DAYS ahead, longer only for an officer (`officer_hint` says how).
    """
    problems = []
    if not outcome:
        problems.append(Message(N_("outcome: none chosen; choose what the visit or call found")))
    if note and len(note) > NOTE_MAX_CHARS:
        problems.append(
            Message(N_("note: {count:,} characters, at most {most:,}"), count=len(note), most=NOTE_MAX_CHARS)
        )
    if until is not None:
        latest = today + timedelta(days=HOSPITAL_MAX_DAYS)
        if outcome and outcome != "hospitalised":
            problems.append(Message(N_("hospitalised until: given, but the outcome is not hospitalised")))
        elif until < today:
            problems.append(Message(N_("hospitalised until: {until} is in the past"), until=until))
        elif officer and until > today + timedelta(days=OFFICER_HOSPITAL_MAX_DAYS):
            problems.append(
                Message(
                    N_(
                        "hospitalised until: {until} is {days} days ahead, at most {most} even for a welfare officer; "
                        "a longer absence is `recipients close` with its reason"
                    ),
                    until=until,
                    days=(until - today).days,
                    most=OFFICER_HOSPITAL_MAX_DAYS,
                )
            )
        elif until > latest and not officer:
            problems.append(
                Message(
                    N_(
                        "hospitalised until: {until} is {days} days ahead, at most {most} ({latest}); "
                        "a longer stay is for a welfare officer: {hint}"
                    ),
                    until=until,
                    days=(until - today).days,
                    most=HOSPITAL_MAX_DAYS,
                    latest=latest,
                    hint=Message(officer_hint),
                )
            )
    if problems:
        raise InputError(N_("nothing was saved"), problems)


def confirmation(name: str, outcome: str, paused_until: date | None = None) -> str:
    """'김영수: 부재(재방문) 저장됨 — 내일 명단에 다시 올라갑니다':
    what was saved and what happens next (Korean, for the web)."""
    step = NEXT_STEP.get(outcome, "").format(until=paused_until or "")
    return f"{name}: {OUTCOME_KOREAN.get(outcome, outcome)} 저장됨" + (f" — {step}" if step else "")


def record_outcome(
    db: Database,
    task_id: int,
    outcome: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    note: str | None = None,
    until: date | None = None,
    actor: str | None = None,
    team: str | None = None,
    officer: bool = False,
    officer_hint: str = N_("ask a welfare officer to record it"),
) -> VisitTask:
    """Write what the visit (or call-back) found.
    not_home keeps the task open for tomorrow's list; most others close it.

    `now` is the time the outcome is for (a drill's --now); the real time is stored beside it. `team`, when given,
    is the only team whose task may be recorded (a team member on the web). `officer`: the record is a welfare
    officer's, who may pause a hospital stay beyond HOSPITAL_MAX_DAYS (check_record).
    """
    local = now.astimezone(tz)
    check_record(
        outcome=outcome, note=note, until=until, today=local.date(), officer=officer, officer_hint=officer_hint
    )
    with db.transaction() as session:
        task = session.get(VisitTask, task_id)
        if task is None or (team is not None and task.team != team):
            raise NotFoundError(N_("no visit task {task}"), task=task_id)
        allowed = {"callback": CALLBACK_OUTCOMES, "number": NUMBER_OUTCOMES}.get(task.kind, OUTCOMES)
        if outcome not in allowed:
            raise InputError(
                N_("unknown outcome {outcome!r} for a {kind} task (use {choices})"),
                outcome=outcome,
                kind=task.kind,
                choices=", ".join(allowed),
            )
        if task.status == TaskStatus.CLOSED:
            raise InputError(
                N_("visit task {task} is already closed with outcome {outcome}"),
                task=task_id,
                outcome=Keyword("outcome", task.outcome or ""),
            )
        person = session.get_one(Person, task.person_id)  # the task's person: a foreign key, so always there
        record_task_outcome(
            task,
            outcome=outcome,
            now=now,
            actor=actor or current_actor(),
            close=outcome not in STAYS_OPEN,
            line=f"{local:%Y-%m-%d %H:%M} {OUTCOME_KOREAN[outcome]}" + (f": {note}" if note else ""),
            # not home: off today's open list at once, first on tomorrow's
            revisit_on=local.date() + timedelta(days=1) if outcome == "not_home" else None,
        )
        if outcome == "hospitalised":
            person.status = PersonStatus.PAUSED
            person.paused_until = until or (local.date() + timedelta(days=HOSPITAL_DEFAULT_DAYS))
        elif outcome in ("deceased", "moved"):
            person.status, person.closed_reason = PersonStatus.CLOSED, outcome
        person.updated_at = now
        session.add_all([task, person])
        audit(
            session,
            at=now,
            action="visit.record",
            subject=f"task {task_id}",
            detail=f"outcome={outcome}" + (f" until={person.paused_until}" if outcome == "hospitalised" else ""),
            actor=actor,
        )
    return task
