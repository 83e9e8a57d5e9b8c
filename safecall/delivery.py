"""Daily delivery: each team's lists as CSV (with BOM) and XLSX in the outbox, and by e-mail, retried until sent."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from sqlmodel import select

from safecall.domain import Channel, OutboxKind, SendStatus, TaskKind
from safecall.events import log_event
from safecall.glossary import COLUMN
from safecall.notify import DeliveryError, Mailer
from safecall.outbox import HandedOver, send_due
from safecall.settings import Instance
from safecall.store import Database, OutboxMessage, audit
from safecall.visits import KINDS, _write_private, export_lists, open_task_rows

log = logging.getLogger("safecall.delivery")
# Counts and a link only: a name or a phone number never goes into an e-mail, its subject included.
SUBJECT = {
    TaskKind.VISIT: "[안심콜] {day} 방문 대상 명단 ({team})",
    TaskKind.CALLBACK: "[안심콜] {day} 도움 요청 회신 명단 ({team})",
    TaskKind.NUMBER: "[안심콜] {day} 번호 확인 필요 명단 ({team})",
}
BODY = {
    TaskKind.VISIT: "{team} 담당 {day} 가정방문 대상은 {count}명입니다.\n"
    "명단을 보고 방문 결과를 기록하려면 로그인하세요:\n{link}\n",
    TaskKind.CALLBACK: "{team} 담당 {day} 안심콜에서 2번(도움 요청)을 누른 분이 {count}명입니다.\n"
    "오늘 중으로 연락해 주세요:\n{link}\n",
    # Number tasks are not on a web page yet: the list is the outbox file, or the CLI.
    TaskKind.NUMBER: "{team} 담당 {day} 안심콜에서 없는 번호로 나온 분이 {count}명입니다.\n"
    "번호를 확인해 고쳐 주세요. 명단은 "
    "발송 폴더의 {day}-number-{team} 파일이나 'safecall visits list --kind number'로 볼 수 있습니다.\n",
}
# The counts behind the list, by why people are on it: a team plans its day from the e-mail alone.
COUNTS = "\n명단 사유: {reasons}\n이전 방문 메모가 있는 분: {with_notes}명\n"
ATTACHED = "\n첨부한 XLSX 파일은 암호로 잠겨 있습니다. 암호는 이 메일에 없습니다: 사무실에서 따로 받은 암호로 여세요.\n"
NO_PERSONAL_DATA = "\n개인정보 보호를 위해 이 메일에는 이름과 전화번호를 넣지 않습니다.\n"


def team_link(base_url: str, kind: str, team: str) -> str:
    return f"{base_url}/team/{quote(team)}" if kind == TaskKind.VISIT else f"{base_url}/callbacks"


def encrypted_copy(xlsx: Path, password: str) -> Path:
    """An XLSX locked with `password` (ECMA-376 agile encryption, msoffcrypto-tool) beside the list, owner-only."""
    import msoffcrypto.format.ooxml

    target = xlsx.with_name(f"{xlsx.stem}-암호.xlsx")
    with xlsx.open("rb") as source:
        locked = io.BytesIO()
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt(password, locked)
    _write_private(target, lambda handle: handle.write(locked.getvalue()))
    return target


def write_day_files(db: Database, instance: Instance, day: date) -> dict[tuple[str, str], tuple[int, list[Path]]]:
    """(team, kind) -> (people, files) for every team; every team gets its visit list, empty or not."""
    teams = [t.name for t in instance.settings.teams]
    written = {}
    for kind in KINDS:
        lists = open_task_rows(db, instance.tz, on=day, kind=kind, teams=teams)
        for team in teams:
            rows = lists.get(team, [])
            if kind != TaskKind.VISIT and not rows:  # the officer's lists only when someone is on them
                continue
            files = []
            for fmt in ("xlsx", "csv"):
                files += export_lists(
                    {team: rows}, output=instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind
                )
            written[(team, kind)] = (len(rows), files)
    return written


def team_list_key(day: date, team: str, kind: str) -> str:
    """One message per team, list and day."""
    return f"team-list:{day.isoformat()}:{team}:{kind}"


def _team_lists(day: date):
    return select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.TEAM_LIST, OutboxMessage.day == day)


def publish_day(
    db: Database, instance: Instance, mailer: Mailer | None, day: date, *, now: datetime, resend: bool = False
) -> None:
    """Write the day's files and queue their e-mails; once per day unless `resend`."""
    with db.session() as session:
        already = session.exec(_team_lists(day)).first()
    if already and not resend:
        return
    written = write_day_files(db, instance, day)
    with db.transaction() as session:
        for (team, kind), (count, files) in written.items():
            key = team_list_key(day, team, kind)
            message = session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()
            message = message or OutboxMessage(
                key=key, kind=OutboxKind.TEAM_LIST, channel=Channel.EMAIL, day=day, team=team, list_kind=TaskKind(kind)
            )
            message.status, message.attempts, message.next_try_at, message.last_error = SendStatus.PENDING, 0, now, None
            message.files = "\n".join(str(f) for f in files)
            session.add(message)
            audit(
                session,
                at=now,
                action="visits.export",
                subject=f"{kind} list {team}",
                detail=f"day={day} people={count} (daily delivery)",
            )
            log_event(log, "list_written", day=day.isoformat(), team=team, kind=kind, people=count)
    send_due_deliveries(db, instance, mailer, now=now)


def send_due_deliveries(
    db: Database, instance: Instance, mailer: Mailer | None, *, now: datetime
) -> list[OutboxMessage]:
    """Try every team list that is due; failures are retried, and reported as failed after max_attempts."""
    return send_due(
        db, instance.settings.delivery, team_list_hand_over(instance, mailer), now=now, kinds=[OutboxKind.TEAM_LIST]
    )


def team_list_hand_over(instance: Instance, mailer: Mailer | None):
    """How a team's list is handed over: its e-mail written from the files, to the address the settings give now."""
    settings = instance.settings
    teams = {t.name: t for t in settings.teams}

    def hand_over(delivery: OutboxMessage) -> HandedOver:
        team = teams.get(delivery.team or "")
        address = None
        if team:
            address = team.email if delivery.list_kind == TaskKind.VISIT else (team.officer_email or team.email)
        to = [address] if address else []
        files = [Path(f) for f in delivery.files.split("\n") if f]
        count, reasons, with_notes = list_counts(files)
        if not to:
            raise DeliveryError(f"team {delivery.team!r} has no e-mail address in config/safecall.toml")
        if mailer is None:
            raise DeliveryError("no [smtp] section in config/safecall.toml: the list is only in the outbox")
        kind = delivery.list_kind
        # A team list has its day, team and kind (publish_day writes them).
        assert delivery.day is not None and delivery.team is not None and kind is not None
        fields = dict(
            day=delivery.day.isoformat(),
            team=delivery.team,
            count=count,
            link=team_link(settings.web.base_url, kind, delivery.team),
        )
        body = (
            BODY[kind].format(**fields)
            + COUNTS.format(
                reasons=", ".join(f"{reason} {n}명" for reason, n in reasons.items()) or "없음", with_notes=with_notes
            )
            + NO_PERSONAL_DATA
        )
        attachments = []
        if settings.delivery.attachments:
            assert settings.delivery.attachment_password is not None  # required with attachments (DeliverySettings)
            password = settings.delivery.attachment_password.resolve(instance.environ)
            attachments = [encrypted_copy(f, password) for f in files if f.suffix == ".xlsx"]
            body += ATTACHED
        mailer.send(to, SUBJECT[kind].format(**fields), body, attachments)
        return HandedOver(logged={"people": count})

    return hand_over


def list_counts(files: list[Path]) -> tuple[int, dict[str, int], int]:
    """(people, people by each reason they are on the list, people with earlier visit notes), read from the CSV
    that was written (a note may span lines: the CSV reader, not a line count)."""
    csv_file = next((f for f in files if f.suffix == ".csv" and f.exists()), None)
    if csv_file is None:
        return 0, {}, 0
    records = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8-sig"))))
    reasons: dict[str, int] = {}
    for record in records:
        for reason in filter(None, (part.strip() for part in record.get(COLUMN["reason"], "").split(","))):
            reasons[reason] = reasons.get(reason, 0) + 1
    return len(records), reasons, sum(1 for record in records if record.get(COLUMN["notes"]))


def deliveries_for(db: Database, day: date) -> list[OutboxMessage]:
    """The day's team lists, by team and list."""
    with db.session() as session:
        return list(session.exec(_team_lists(day).order_by(OutboxMessage.team, OutboxMessage.list_kind)))
