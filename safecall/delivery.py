"""Daily delivery: each team's lists as CSV (with BOM) and XLSX in the outbox, and by e-mail, retried until sent."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlmodel import select

from safecall.events import log_event
from safecall.glossary import COLUMN
from safecall.notify import DeliveryError, Mailer
from safecall.settings import Instance
from safecall.store import Database, Delivery, audit
from safecall.visits import KINDS, _write_private, export_lists, open_task_rows

log = logging.getLogger("safecall.delivery")
# Counts and a link only: a name or a phone number never goes into an e-mail, its subject included.
SUBJECT = {"visit": "[안심콜] {day} 방문 대상 명단 ({team})", "callback": "[안심콜] {day} 도움 요청 회신 명단 ({team})",
           "number": "[안심콜] {day} 번호 확인 필요 명단 ({team})"}
BODY = {
    "visit": "{team} 담당 {day} 가정방문 대상은 {count}명입니다.\n명단을 보고 방문 결과를 기록하려면 로그인하세요:\n{link}\n",
    "callback": "{team} 담당 {day} 안심콜에서 2번(도움 요청)을 누른 분이 {count}명입니다.\n오늘 중으로 연락해 주세요:\n{link}\n",
    # Number tasks are not on a web page yet: the list is the outbox file, or the CLI.
    "number": "{team} 담당 {day} 안심콜에서 없는 번호로 나온 분이 {count}명입니다.\n번호를 확인해 고쳐 주세요. 명단은 "
              "발송 폴더의 {day}-number-{team} 파일이나 'safecall visits list --kind number'로 볼 수 있습니다.\n",
}
# The counts behind the list, by why people are on it: a team plans its day from the e-mail alone.
COUNTS = "\n명단 사유: {reasons}\n이전 방문 메모가 있는 분: {with_notes}명\n"
ATTACHED = "\n첨부한 XLSX 파일은 암호로 잠겨 있습니다. 암호는 이 메일에 없습니다: 사무실에서 따로 받은 암호로 여세요.\n"
NO_PERSONAL_DATA = "\n개인정보 보호를 위해 이 메일에는 이름과 전화번호를 넣지 않습니다.\n"


def team_link(base_url: str, kind: str, team: str) -> str:
    return f"{base_url}/team/{quote(team)}" if kind == "visit" else f"{base_url}/callbacks"


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
            if kind != "visit" and not rows:  # the officer's lists only when someone is on them
                continue
            files = []
            for fmt in ("xlsx", "csv"):
                files += export_lists({team: rows}, output=instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind)
            written[(team, kind)] = (len(rows), files)
    return written


def publish_day(db: Database, instance: Instance, mailer: Mailer | None, day: date, *, now: datetime, resend: bool = False) -> None:
    """Write the day's files and queue their e-mails; once per day unless `resend`."""
    with db.session() as session:
        already = {(d.team, d.kind): d for d in session.exec(select(Delivery).where(Delivery.day == day))}
    if already and not resend:
        return
    written = write_day_files(db, instance, day)
    with db.transaction() as session:
        for (team, kind), (count, files) in written.items():
            delivery = session.exec(select(Delivery).where(Delivery.day == day, Delivery.team == team, Delivery.kind == kind)).first()
            delivery = delivery or Delivery(day=day, team=team, kind=kind)
            delivery.status, delivery.attempts, delivery.next_try_at, delivery.last_error = "pending", 0, now, None
            delivery.files = "\n".join(str(f) for f in files)
            session.add(delivery)
            audit(session, at=now, action="visits.export", subject=f"{kind} list {team}", detail=f"day={day} people={count} (daily delivery)")
            log_event(log, "list_written", day=day.isoformat(), team=team, kind=kind, people=count)
    send_due_deliveries(db, instance, mailer, now=now)


def send_due_deliveries(db: Database, instance: Instance, mailer: Mailer | None, *, now: datetime) -> list[Delivery]:
    """Try every pending delivery that is due; failures are retried, and reported as failed after max_attempts."""
    settings = instance.settings
    teams = {t.name: t for t in settings.teams}
    with db.session() as session:
        due = list(session.exec(select(Delivery).where(Delivery.status.in_(["pending", "failed"]), Delivery.next_try_at <= now)))
    for delivery in due:
        team = teams.get(delivery.team)
        address = None
        if team:
            address = team.email if delivery.kind == "visit" else (team.officer_email or team.email)
        to = [address] if address else []
        files = [Path(f) for f in delivery.files.split("\n") if f]
        count, reasons, with_notes = list_counts(files)
        try:
            if not to:
                raise DeliveryError(f"team {delivery.team!r} has no e-mail address in config/safecall.toml")
            if mailer is None:
                raise DeliveryError("no [smtp] section in config/safecall.toml: the list is only in the outbox")
            fields = dict(day=delivery.day.isoformat(), team=delivery.team, count=count,
                          link=team_link(settings.web.base_url, delivery.kind, delivery.team))
            body = BODY[delivery.kind].format(**fields) + COUNTS.format(
                reasons=", ".join(f"{reason} {n}명" for reason, n in reasons.items()) or "없음", with_notes=with_notes) + NO_PERSONAL_DATA
            attachments = []
            if settings.delivery.attachments:
                password = settings.delivery.attachment_password.resolve(instance.environ)
                attachments = [encrypted_copy(f, password) for f in files if f.suffix == ".xlsx"]
                body += ATTACHED
            mailer.send(to, SUBJECT[delivery.kind].format(**fields), body, attachments)
        except DeliveryError as exc:
            delivery.attempts += 1
            delivery.last_error = str(exc)
            delivery.next_try_at = now + retry_delay(settings.delivery, delivery.attempts)
            # Past max_attempts it is reported as failed, and still retried: a list is never dropped.
            delivery.status = "failed" if delivery.attempts >= settings.delivery.max_attempts else "pending"
            log_event(log, f"delivery_{'failed' if delivery.status == 'failed' else 'retry'}",
                      level=logging.ERROR if delivery.status == "failed" else logging.WARNING, day=delivery.day.isoformat(),
                      team=delivery.team, kind=delivery.kind, attempts=delivery.attempts, error=str(exc))
        else:
            delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
            delivery.attempts += 1
            log_event(log, "delivery_sent", day=delivery.day.isoformat(), team=delivery.team, kind=delivery.kind, people=count)
        with db.transaction() as session:
            session.add(delivery)
    return due


def retry_delay(settings, attempts: int) -> timedelta:
    """retry_minutes, doubling after each failure, at most an hour apart."""
    return timedelta(minutes=min(60, settings.retry_minutes * 2 ** (attempts - 1)))


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


def deliveries_for(db: Database, day: date) -> list[Delivery]:
    with db.session() as session:
        return list(session.exec(select(Delivery).where(Delivery.day == day).order_by(Delivery.team, Delivery.kind)))
