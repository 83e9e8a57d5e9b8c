"""Roster import: CSV (UTF-8, UTF-8 with BOM, CP949/EUC-KR) or XLSX with Korean or English headers.

Every row is validated first; the database is touched only when the whole file is good.
"""

from __future__ import annotations

import os
import re
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from safecall import phones, tables
from safecall.domain import PersonStatus, TaskStatus
from safecall.errors import InputError, Message, message_of
from safecall.i18n import N_
from safecall.policy import parse_personal_window
from safecall.settings import Settings
from safecall.store import Database, Person, VisitTask, audit, table_of
from safecall.tables import LIMITS, Limits, Table, TableRow

FIELD_ALIASES = {
    "name": ["성명", "이름", "name"],
    "phone": ["전화번호", "연락처", "휴대폰", "휴대전화", "phone"],
    "phone2": ["보조연락처", "전화번호2", "연락처2", "보조전화번호", "phone2", "second phone", "secondphone"],
    "address": ["주소", "address"],
    "dong": ["행정동", "dong"],
    "birth_date": ["생년월일", "birth date", "birth_date", "birthdate"],
    "team": ["담당팀", "team"],
    "guardian_name": ["보호자 성명", "보호자성명", "보호자 이름", "guardian name", "guardian_name"],
    "guardian_phone": ["보호자 연락처", "보호자 전화번호", "guardian phone", "guardian_phone"],
    "consent_date": ["동의일자", "동의일", "consent date", "consent_date"],
    "risk": ["위험도", "risk"],
    "voice_style": ["음성", "voice"],
    "contact": ["연락 방법", "연락방법", "contact"],
    "call_window": ["통화 희망 시간", "통화희망시간", "통화 시간", "call time", "call_time", "call window"],
}
REQUIRED = ("name", "phone", "address", "dong", "birth_date")
# Columns office spreadsheets often carry that SafeCall has no use for.
IGNORABLE = {"번호", "순번", "no", "비고", "메모", "note", "notes", "연번"}
RISK_WORDS = {
    3: {"상", "고", "높음", "high", "3"},
    2: {"중", "보통", "medium", "2", ""},
    1: {"하", "저", "낮음", "low", "1"},
}
# 연락 방법: text for people who are deaf or hard of hearing, whom a one-tap link reaches first (safecall/checkin.py).
CONTACT_WORDS = {"phone": {"전화", "phone", ""}, "text": {"문자", "청각", "청각장애", "난청", "text"}}
VOICE_WORDS = {"normal": {"보통", "normal", ""}, "slow": {"천천히", "느리게", "slow"}, "loud": {"크게", "loud"}}
WHITESPACE = re.compile(r"\s+")
# C0 and C1 controls (tab and line breaks are whitespace, as Excel's Alt+Enter makes them), DEL, and the bidi
# overrides: in a name they colour, clear or retitle the officer's terminal, or reorder what is shown.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Characters that show nothing: format characters (zero-width space and joiners, BOM, soft hyphen; Unicode
# category Cf) and the blank Hangul fillers. A name holding one looks like another and is found by no look-up.
INVISIBLE_EXTRA = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u034f", "\u2800"}
OLDEST_BIRTH = date(1900, 1, 1)
MAX_AGE, MIN_AGE = 120, 14
DATE_PATTERN = re.compile(r"^(\d{4})\s*[-./년]\s*(\d{1,2})\s*[-./월]\s*(\d{1,2})\s*일?\.?$|^(\d{4})(\d{2})(\d{2})$")


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-()]", "", str(text or "")).lower()


ALIAS_TO_FIELD = {_header_key(alias): name for name, aliases in FIELD_ALIASES.items() for alias in aliases}


@dataclass
class ImportReport:
    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    without_consent: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    moved_tasks: int = 0  # open tasks that followed their person to another team


def is_roster_header(cells: list[str]) -> bool:
    """A header row names at least two roster columns; a title row above it ("2026년 안심콜 대상자 명단") does not."""
    return sum(_header_key(cell) in ALIAS_TO_FIELD for cell in cells if cell) >= 2


def read_table(path: Path, limits: Limits = LIMITS) -> Table:
    """The roster's sheet and its header row (below any title rows); see safecall.tables for the limits."""
    return tables.read_table(
        path, is_roster_header, limits, header_hint=", ".join(FIELD_ALIASES[name][0] for name in REQUIRED)
    )


def map_header(path: Path | str, header: list[str]) -> tuple[dict[str, str], list[str]]:
    """Field name -> column title, and the ignorable columns. Unknown or doubled columns are errors."""
    mapping: dict[str, str] = {}
    ignored, problems = [], []
    for title in header:
        key = _header_key(title)
        if not key or key in IGNORABLE:
            ignored.append(title)
            continue
        name = ALIAS_TO_FIELD.get(key)
        if name is None:
            problems.append(
                Message(
                    N_("column {title!r}: unknown column (known: {known})"),
                    title=title,
                    known=", ".join(a[0] for a in FIELD_ALIASES.values()),
                )
            )
        elif name in mapping:
            problems.append(
                Message(
                    N_("columns {first!r} and {second!r} both mean {name}"),
                    first=mapping[name],
                    second=title,
                    name=name,
                )
            )
        else:
            mapping[name] = title
    for name in REQUIRED:
        if name not in mapping:
            problems.append(
                Message(N_("missing required column {title} ({name})"), title=FIELD_ALIASES[name][0], name=name)
            )
    if problems:
        raise InputError(N_("{path}: the header is not usable"), problems, path=path)
    return mapping, ignored


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    match = DATE_PATTERN.match(text)
    if not match:
        raise ValueError(Message(N_("not a date: {text!r} (use YYYY-MM-DD)"), text=text))
    y, m, d = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
    try:
        return date(y, m, d)
    except ValueError as exc:
        raise ValueError(Message(N_("not a date: {text!r} ({reason})"), text=text, reason=str(exc))) from None


def _cell_text(value: Any) -> str:
    """The cell as text, NFC-normalised: a name saved decomposed (NFD, as macOS writes files) is the same name."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value).strip())


def invisible_character(text: str) -> str | None:
    return next((c for c in text if c in INVISIBLE_EXTRA or unicodedata.category(c) == "Cf"), None)


def _phone_text(value: Any) -> str:
    # Excel turns 01012345678 into the number 1012345678: put the leading 0 back.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = _cell_text(value)
        return "0" + text if not text.startswith("0") and len(text) in (9, 10) else text
    return _cell_text(value)


def implausible_birth_date(born: date, today: date) -> Message | None:
    """Why a birth date cannot be right (a typing slip: 1800, 2045, today's date), or None."""
    if born > today:
        return Message(N_("birth date {born} is in the future"), born=born)
    if born < OLDEST_BIRTH:
        return Message(N_("birth date {born} is before {year}"), born=born, year=OLDEST_BIRTH.year)
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age > MAX_AGE:
        return Message(
            N_("birth date {born} would make the person {age} years old (at most {most})"),
            born=born,
            age=age,
            most=MAX_AGE,
        )
    if age < MIN_AGE:
        return Message(
            N_("birth date {born} would make the person only {age} years old (at least {least}); a typing slip?"),
            born=born,
            age=age,
            least=MIN_AGE,
        )
    return None


def parse_risk(value: Any) -> int:
    text = _cell_text(value).lower()
    for level, words in RISK_WORDS.items():
        if text in words:
            return level
    raise ValueError(Message(N_("unknown risk {text!r} (use 상/중/하 or high/medium/low)"), text=text))


def parse_voice(value: Any) -> str:
    text = _cell_text(value).lower()
    style = next((style for style, words in VOICE_WORDS.items() if text in words), None)
    if style is None:
        raise ValueError(Message(N_("unknown voice {text!r} (use 보통/천천히/크게)"), text=text))
    return style


def parse_contact(value: Any) -> str:
    text = _cell_text(value).lower()
    contact = next((kind for kind, words in CONTACT_WORDS.items() if text in words), None)
    if contact is None:
        raise ValueError(
            Message(N_("unknown contact method {text!r} (use 전화 or 문자; 청각장애 and 난청 mean 문자)"), text=text)
        )
    return contact


# A big roster's rows are checked in parallel: the per-row work (libphonenumber above all) is pure.
PARALLEL_FROM_ROWS = 20_000
CHUNKS = 8


def validate_rows(
    path: Path | str,
    rows: list[TableRow],
    mapping: dict[str, str],
    settings: Settings,
    today: date,
    stored: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The people of `rows`, or an InputError listing every problem. `stored`: person_key -> the stored row."""
    workers = min(os.cpu_count() or 1, 4)
    if len(rows) >= PARALLEL_FROM_ROWS and workers > 1:
        size = -(-len(rows) // CHUNKS)
        chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            checked = list(pool.map(_check_rows, chunks, repeat(mapping), repeat(settings), repeat(today)))
    else:
        checked = [_check_rows(rows, mapping, settings, today)]
    people = [person for chunk_people, _ in checked for person in chunk_people]
    problems = [problem for _, chunk_problems in checked for problem in chunk_problems]
    # Duplicates span chunks, so they are looked for once all rows are checked.
    first_row_of_key: dict[str, int] = {}
    first_row_of_phone: dict[str, int] = {}
    # The rule within the file holds across files: a number is one open person's (people in this file keep or
    # give up theirs here; a closed person's number may have gone to someone else).
    keys_in_file = {person.get("person_key") for person in people}
    holder_of_phone = {
        row.phone: row
        for key, row in (stored or {}).items()
        if key not in keys_in_file and row.phone and row.status != PersonStatus.CLOSED
    }
    for person in people:
        key = person.get("person_key")
        if key:
            if key in first_row_of_key:
                problems.append(
                    (
                        person["row"],
                        Message(
                            N_("row {row}: the same person ({name}, {born}) is already on row {first}"),
                            row=person["row"],
                            name=person["name"],
                            born=person["birth_date"],
                            first=first_row_of_key[key],
                        ),
                    )
                )
            else:
                first_row_of_key[key] = person["row"]
        if person["phone"]:
            if person["phone"] in first_row_of_phone:
                problems.append(
                    (
                        person["row"],
                        Message(
                            N_("row {row}, column {column!r}: number {number} is already given on row {first}"),
                            row=person["row"],
                            column=mapping["phone"],
                            number=phones.national(person["phone"]),
                            first=first_row_of_phone[person["phone"]],
                        ),
                    )
                )
            else:
                first_row_of_phone[person["phone"]] = person["row"]
            holder = holder_of_phone.get(person["phone"])
            if holder is not None:
                problems.append(
                    (
                        person["row"],
                        Message(
                            N_(
                                "row {row}, column {column!r}: number {number} is already that of {name!r} "
                                "(id {id}, born {born}) on the roster"
                            ),
                            row=person["row"],
                            column=mapping["phone"],
                            number=phones.national(person["phone"]),
                            name=holder.name,
                            id=holder.id,
                            born=holder.birth_date,
                        ),
                    )
                )
    if problems:
        problems.sort(key=lambda problem: problem[0])  # stable: each row's problems in column order
        raise InputError(
            N_("{path}: {count} problem(s); nothing was imported"),
            [text for _, text in problems],
            path=path,
            count=len(problems),
        )
    return people


def _check_rows(
    rows: list[TableRow], mapping: dict[str, str], settings: Settings, today: date
) -> tuple[list[dict], list[tuple[int, str]]]:
    """Each row on its own: the person's values, and (row, problem) pairs."""
    problems: list[tuple[int, str]] = []
    people: list[dict[str, Any]] = []
    team_names = {team.name for team in settings.teams}
    known_dongs = {dong for team in settings.teams for dong in team.dongs}

    for row in rows:

        def cell(name: str, row: TableRow = row) -> Any:
            return row.values.get(mapping[name]) if name in mapping else None

        def problem(name: str, message: str, row: TableRow = row) -> None:
            problems.append(
                (
                    row.row,
                    Message(
                        N_("row {row}, column {column!r}: {problem}"),
                        row=row.row,
                        column=mapping.get(name, name),
                        problem=message,
                    ),
                )
            )

        person: dict[str, Any] = {"row": row.row}
        for name in mapping:
            control = CONTROL.search(_cell_text(cell(name)))
            if control:
                problem(
                    name,
                    Message(
                        N_("contains the control character U+{code}; retype the cell"),
                        code=f"{ord(control.group()):04X}",
                    ),
                )
            elif invisible := invisible_character(_cell_text(cell(name))):
                problem(
                    name,
                    Message(
                        N_("contains the invisible character U+{code}; retype the cell"), code=f"{ord(invisible):04X}"
                    ),
                )
        for name in ("name", "address", "dong", "guardian_name", "team"):
            person[name] = WHITESPACE.sub(" ", _cell_text(cell(name))) or None
        for name in ("name", "address", "dong"):
            if not person[name]:
                problem(name, Message(N_("empty")))
        for name in ("phone", "phone2", "guardian_phone"):
            text = _phone_text(cell(name))
            person[name] = None
            if text:
                try:
                    person[name] = phones.normalise(text)
                except ValueError as exc:
                    problem(name, message_of(exc))
            elif name == "phone":
                problem(name, Message(N_("empty")))
        for name in ("birth_date", "consent_date"):
            raw = cell(name)
            person[name] = None
            if raw is None or _cell_text(raw) == "":
                if name == "birth_date":
                    problem(name, Message(N_("empty")))
                continue
            try:
                person[name] = parse_date(raw)
            except ValueError as exc:
                problem(name, message_of(exc))
                continue
        if person["birth_date"]:
            mistake = implausible_birth_date(person["birth_date"], today)
            if mistake:
                problem("birth_date", mistake)
                person["birth_date"] = None
        try:
            person["risk"] = parse_risk(cell("risk"))
        except ValueError as exc:
            problem("risk", message_of(exc))
        try:
            person["voice_style"] = parse_voice(cell("voice_style"))
        except ValueError as exc:
            problem("voice_style", message_of(exc))
        try:
            person["contact"] = parse_contact(cell("contact"))
        except ValueError as exc:
            problem("contact", message_of(exc))
        try:
            person["call_window"] = parse_personal_window(_cell_text(cell("call_window")))
        except ValueError as exc:
            problem("call_window", message_of(exc))
        dong_team = settings.team_for_dong(person["dong"]) if person["dong"] else None
        if person["team"]:
            if team_names and person["team"] not in team_names:
                problem(
                    "team",
                    Message(
                        N_("team {team!r} is not in config/safecall.toml (teams: {teams})"),
                        team=person["team"],
                        teams=", ".join(sorted(team_names)),
                    ),
                )
            elif dong_team and dong_team != person["team"]:
                problem(
                    "team",
                    Message(
                        N_(
                            "team {team!r} contradicts 행정동 {dong!r}, which config/safecall.toml gives to {other!r}; "
                            "correct the team, or leave 담당팀 empty"
                        ),
                        team=person["team"],
                        dong=person["dong"],
                        other=dong_team,
                    ),
                )
            elif person["dong"] and not dong_team and known_dongs:
                problem(
                    "dong",
                    Message(
                        N_(
                            "dong {dong!r} is in no team's dongs in config/safecall.toml; "
                            "check the spelling or add it to a team"
                        ),
                        dong=person["dong"],
                    ),
                )
        elif person["dong"]:
            person["team"] = dong_team
            if not person["team"]:
                problem(
                    "dong",
                    Message(
                        N_("dong {dong!r} belongs to no team in config/safecall.toml; add it to a team or fill 담당팀"),
                        dong=person["dong"],
                    ),
                )
        if person["name"] and person["birth_date"]:
            person["person_key"] = f"{person['name']}|{person['birth_date'].isoformat()}"
        people.append(person)
    return people, problems


def _move_open_tasks(session, team_of: dict[int, str], now: datetime) -> int:
    """Open tasks follow a person whose new dong is another team's: off the old team's list, on the new one's, saying
    where they came from; each move audited. The caller's transaction writes them with the import."""
    task_table = table_of(VisitTask)
    connection = session.connection()
    moves = []
    ids = list(team_of)
    for start in range(0, len(ids), 900):  # IN lists below SQLite's bound-parameter limit
        for task_id, person_id, old_team in connection.execute(
            sa.select(task_table.c.id, task_table.c.person_id, task_table.c.team).where(
                task_table.c.person_id.in_(ids[start : start + 900]), task_table.c.status == TaskStatus.OPEN
            )
        ):
            new_team = team_of[person_id]
            if new_team and new_team != old_team:
                moves.append({"task_id": task_id, "team": new_team, "moved_from": old_team})
                audit(
                    session,
                    at=now,
                    action="task.move",
                    subject=f"task {task_id}",
                    detail=f"person={person_id} from={old_team} to={new_team}",
                )
    if moves:
        connection.execute(sa.update(task_table).where(task_table.c.id == sa.bindparam("task_id")), moves)
    return len(moves)


WRITE_BATCH = 5000
PERSON_FIELDS = (
    "name",
    "phone",
    "phone2",
    "address",
    "dong",
    "birth_date",
    "team",
    "guardian_name",
    "guardian_phone",
    "consent_date",
    "risk",
    "voice_style",
    "call_window",
    "contact",
)


def import_roster(
    db: Database, path: Path, settings: Settings, *, now: datetime, today: date, dry_run: bool = False
) -> ImportReport:
    table = read_table(path)
    mapping, ignored = map_header(table.source, table.header)
    if not table.rows:
        raise InputError(
            N_("{source}: the header (row {row}) is there but no people follow it"),
            source=table.source,
            row=table.header_row,
        )
    with db.transaction() as session:
        # Plain rows and statements, not ORM objects: a district roster has 100,000 people.
        connection = session.connection()
        person_table = table_of(Person)
        existing = {
            row.person_key: row
            for row in connection.execute(
                sa.select(
                    person_table.c.id,
                    person_table.c.person_key,
                    person_table.c.status,
                    *(person_table.c[n] for n in PERSON_FIELDS),
                )
            )
        }
        people = validate_rows(table.source, table.rows, mapping, settings, today, stored=existing)
        report = ImportReport(source=str(path), rows=len(people), ignored_columns=ignored, dry_run=dry_run)
        added, updated = [], []
        for person in people:
            if not person["consent_date"] or person["consent_date"] > today:
                report.without_consent.append(Message(N_("row {row}: {name}"), row=person["row"], name=person["name"]))
            current = existing.get(person["person_key"])
            values = {name: person[name] for name in PERSON_FIELDS}
            if current is None:
                added.append(
                    {
                        "person_key": person["person_key"],
                        "status": "active",
                        "created_at": now,
                        "updated_at": now,
                        **values,
                    }
                )
            elif any(getattr(current, name) != value for name, value in values.items()):
                updated.append({"person_id": current.id, "updated_at": now, **values})
            else:
                report.unchanged += 1
        report.added, report.updated = len(added), len(updated)
        for start in range(0, len(added), WRITE_BATCH):
            connection.execute(sa.insert(person_table), added[start : start + WRITE_BATCH])
        if updated:
            connection.execute(sa.update(person_table).where(person_table.c.id == sa.bindparam("person_id")), updated)
            report.moved_tasks = _move_open_tasks(session, {row["person_id"]: row["team"] for row in updated}, now)
        if dry_run:
            session.rollback()
            return report
        audit(
            session,
            at=now,
            action="roster.import",
            subject=path.name,
            detail=f"added={report.added} updated={report.updated} unchanged={report.unchanged}"
            + (f" moved_tasks={report.moved_tasks}" if report.moved_tasks else ""),
        )
    return report
