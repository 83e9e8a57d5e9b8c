"""Escalation: overdue visits, guardians told by SMS, officers told by e-mail. Each message is sent once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import select

from safecall import phones
from safecall.campaign import CampaignDef
from safecall.delivery import retry_delay
from safecall.events import log_event
from safecall.notify import DeliveryError, Mailer, SmsSender
from safecall.settings import Settings
from safecall.store import CampaignRun, Database, Notification, Person, VisitTask, audit

log = logging.getLogger("safecall.escalation")


def _queue(session, key: str, channel: str, recipient: str, body: str, now: datetime) -> None:
    if session.exec(select(Notification).where(Notification.key == key)).first() is None:
        session.add(Notification(key=key, channel=channel, recipient=recipient, body=body, next_try_at=now))


def notify_officers(db: Database, settings: Settings, teams: list[str], *, key: str, body: str, now: datetime) -> list[str]:
    """One e-mail under `key` to the officers of `teams` (every team when empty), queued once whatever the
    number of calls; returns the addresses it was queued for."""
    chosen = [t for t in settings.teams if not teams or t.name in teams]
    officers = sorted({t.officer_email or t.email for t in chosen if t.officer_email or t.email})
    with db.transaction() as session:
        for officer in officers:
            _queue(session, f"{key}:{officer}", "email", officer, body, now)
    return officers


def mark_overdue(db: Database, settings: Settings, *, now: datetime) -> list[int]:
    """Visits with no outcome in time: flagged (top of the next list) and the officer is told."""
    cutoff = now - timedelta(hours=settings.visits.overdue_after_hours)
    teams = {t.name: t for t in settings.teams}
    flagged = []
    with db.transaction() as session:
        tasks = session.exec(select(VisitTask, Person).join(Person, Person.id == VisitTask.person_id).where(
            VisitTask.status == "open", VisitTask.kind == "visit", VisitTask.overdue == False,  # noqa: E712
            VisitTask.created_at <= cutoff))
        for task, person in tasks:
            task.overdue = True
            session.add(task)
            flagged.append(task.id)
            audit(session, at=now, action="visit.overdue", subject=f"task {task.id}", actor="safecall")
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if officer:
                # No name or number in an e-mail: the task number and a link to it (behind the login).
                _queue(session, f"officer-overdue:task:{task.id}", "email", officer,
                       f"[안심콜] 방문 결과 미기록: 과제 {task.id} ({task.team}). "
                       f"{task.created_on} 생성 후 {settings.visits.overdue_after_hours}시간이 지났습니다. 내일 명단 맨 위에 올립니다.\n"
                       f"{settings.web.base_url}/task/{task.id}", now)
            log_event(log, "visit_overdue", task=task.id, team=task.team)
    return flagged


def queue_escalations(db: Database, settings: Settings, campaigns: dict[str, CampaignDef], *, now: datetime) -> None:
    """Guardian SMS (when the campaign allows it) and the officer's same-day callback notice, for new tasks."""
    teams = {t.name: t for t in settings.teams}
    with db.transaction() as session:
        rows = session.exec(select(VisitTask, Person, CampaignRun)
                            .join(Person, Person.id == VisitTask.person_id)
                            .join(CampaignRun, CampaignRun.id == VisitTask.run_id)
                            .where(VisitTask.status == "open"))
        for task, person, run in rows:
            campaign = campaigns.get(run.campaign)
            if campaign and campaign.notify.guardian_sms and person.guardian_phone:
                template = campaign.notify.guardian_help if task.kind == "callback" else campaign.notify.guardian_unreachable
                _queue(session, f"guardian:task:{task.id}", "sms", person.guardian_phone, template.format(name=person.name), now)
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if task.kind == "callback" and officer:
                _queue(session, f"officer-callback:task:{task.id}", "email", officer,
                       f"[안심콜] 도움 요청 회신 필요 (과제 {task.id}, {task.team}). 안심콜에서 2번을 누른 분이 도움을 요청하셨습니다. "
                       f"오늘 중으로 연락해 주세요.\n{settings.web.base_url}/callbacks", now)


def send_notifications(db: Database, settings: Settings, mailer: Mailer | None, sms: SmsSender | None, *, now: datetime) -> None:
    with db.session() as session:
        due = list(session.exec(select(Notification).where(Notification.status.in_(["pending", "failed"]), Notification.next_try_at <= now)))
    for note in due:
        try:
            if note.channel == "sms":
                if sms is None:
                    raise DeliveryError("no SMS provider configured ([sms] in config/safecall.toml)")
                sms.send(note.recipient, note.body)
            else:
                if mailer is None:
                    raise DeliveryError("no [smtp] section in config/safecall.toml")
                mailer.send([note.recipient], note.body.split(".")[0][:80], note.body)
        except DeliveryError as exc:
            note.attempts += 1
            note.last_error = phones.mask_text(str(exc))  # stored and shown: no guardian's whole number
            failed = note.attempts >= settings.delivery.max_attempts
            note.status = "failed" if failed else "pending"
            note.next_try_at = now + retry_delay(settings.delivery, note.attempts)
            log_event(log, "notification_failed" if failed else "notification_retry", level=logging.ERROR if failed else logging.WARNING,
                      key=note.key, recipient=_masked(note), error=note.last_error)
        else:
            note.status, note.sent_at = "sent", now
            note.attempts += 1
            log_event(log, "notification_sent", key=note.key, recipient=_masked(note))
        with db.transaction() as session:
            session.add(note)


def _masked(note: Notification) -> str:
    return phones.mask(note.recipient) if note.channel == "sms" else note.recipient
