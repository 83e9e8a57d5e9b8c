"""Escalation: overdue visits, guardians told by SMS or 알림톡, officers told by e-mail. Each message is sent once,
and a text is followed to its delivery."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta

from sqlmodel import select

from safecall import phones
from safecall.campaign import CampaignDef
from safecall.delivery import retry_delay
from safecall.events import log_event
from safecall.notify import DeliveryError, Mailer, SmsMessage, SmsSender, fit_in_one_sms
from safecall.settings import Settings
from safecall.lifecycle import flag_task_overdue
from safecall.store import CampaignRun, Database, Notification, Person, VisitTask, audit

log = logging.getLogger("safecall.escalation")


def queue_notification(session, key: str, channel: str, recipient: str, body: str, now: datetime, **extra) -> None:
    if not is_queued(session, key):
        session.add(Notification(key=key, channel=channel, recipient=recipient, body=body, next_try_at=now, **extra))


def is_queued(session, key: str) -> bool:
    return session.exec(select(Notification.id).where(Notification.key == key)).first() is not None


def guardian_key(person_id: int, week_start: date) -> str:
    """One text per person and week, however many runs (weekly, signal checks) gave them a task that week."""
    return f"guardian:person:{person_id}:week:{week_start.isoformat()}"


def notify_officers(db: Database, settings: Settings, teams: list[str], *, key: str, body: str, now: datetime,
                    text: str | None = None) -> list[str]:
    """One e-mail under `key` to the officers of `teams` (every team when empty), queued once whatever the
    number of calls, and `text` to their mobiles ([teams] officer_phone) when given; returns where it was queued for."""
    chosen = [t for t in settings.teams if not teams or t.name in teams]
    officers = sorted({t.officer_email or t.email for t in chosen if t.officer_email or t.email})
    mobiles = sorted({phones.normalise(t.officer_phone) for t in chosen if t.officer_phone}) if text else []
    with db.transaction() as session:
        for officer in officers:
            queue_notification(session, f"{key}:{officer}", "email", officer, body, now)
        for mobile in mobiles:
            queue_notification(session, f"{key}:{mobile}", "sms", mobile, text, now)
    return officers + [phones.mask(m) for m in mobiles]


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
            flag_task_overdue(task)
            session.add(task)
            flagged.append(task.id)
            audit(session, at=now, action="visit.overdue", subject=f"task {task.id}", actor="safecall")
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if officer:
                # No name or number in an e-mail: the task number and a link to it (behind the login).
                queue_notification(session, f"officer-overdue:task:{task.id}", "email", officer,
                       f"[안심콜] 방문 결과 기록 기한 초과: 과제 {task.id} ({task.team}). "
                       f"{task.created_on} 생성 후 {settings.visits.overdue_after_hours}시간이 지났습니다. 내일 명단 맨 위에 올립니다.\n"
                       f"{settings.web.base_url}/task/{task.id}", now)
            log_event(log, "visit_overdue", task=task.id, team=task.team)
    return flagged


def queue_guardian_text(session, campaign: CampaignDef, person: Person, task: VisitTask, run: CampaignRun,
                        settings: Settings, now: datetime) -> bool:
    """The campaign's text to the person's guardian, once per person and week (when the campaign allows it and a
    guardian is on file); True when it is queued, now or before."""
    # Before schema 8 guardian texts were keyed per task: such a task's text went out already.
    if not (campaign.notify.guardian_sms and person.guardian_phone):
        return False
    if is_queued(session, f"guardian:task:{task.id}"):
        return True
    callback = settings.sms.callback()
    template = "guardian_help" if task.kind == "callback" else "guardian_unreachable"
    text, name = getattr(campaign.notify, template).format(name=person.name, callback=callback), person.name
    if not campaign.notify.allow_lms:  # one SMS, even for a long name (the rule is in fit_in_one_sms)
        text, name = fit_in_one_sms(getattr(campaign.notify, template), person.name, callback=callback)
    variables = {"name": name, "callback": callback}
    queue_notification(session, guardian_key(person.id, run.week_start), "sms", person.guardian_phone, text, now,
           template=template, variables=json.dumps(variables, ensure_ascii=False))
    return True


def queue_escalations(db: Database, settings: Settings, campaigns: dict[str, CampaignDef], *, now: datetime) -> None:
    """Guardian SMS (when the campaign allows it) and the officer's same-day callback notice, for new tasks."""
    teams = {t.name: t for t in settings.teams}
    with db.transaction() as session:
        rows = session.exec(select(VisitTask, Person, CampaignRun)
                            .join(Person, Person.id == VisitTask.person_id)
                            .join(CampaignRun, CampaignRun.id == VisitTask.run_id)
                            .where(VisitTask.status == "open").order_by(VisitTask.id))
        for task, person, run in rows:
            campaign = campaigns.get(run.campaign)
            if campaign:
                queue_guardian_text(session, campaign, person, task, run, settings, now)
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if task.kind == "callback" and task.risk_speech and settings.sms.duty_officer:
                # No name or number in the text: the task number and the page behind the login.
                queue_notification(session, f"duty-officer-risk:task:{task.id}", "sms", settings.sms.duty_officer,
                       f"[안심콜] 위험 발언: 과제 {task.id} ({task.team}). 안심콜 답변에 자살이나 응급 상황을 뜻하는 말이 있었습니다. "
                       f"바로 연락해 주세요. {settings.web.base_url}/callbacks", now)
            if task.kind == "callback" and officer:
                queue_notification(session, f"officer-callback:task:{task.id}", "email", officer,
                       f"[안심콜] 위험 발언, 바로 회신 필요 (과제 {task.id}, {task.team}). 안심콜 답변에 자살이나 응급 상황을 "
                       f"뜻하는 말이 있었습니다. 바로 연락해 주세요.\n{settings.web.base_url}/callbacks" if task.risk_speech else
                       f"[안심콜] 도움 요청 회신 필요 (과제 {task.id}, {task.team}). 안심콜에서 도움을 요청하셨습니다 (2번, 말씀 또는 문자 링크). "
                       f"오늘 중으로 연락해 주세요.\n{settings.web.base_url}/callbacks", now)


def send_notifications(db: Database, settings: Settings, mailer: Mailer | None, sms: SmsSender | None, *, now: datetime) -> None:
    """Sends what is due, and reads back the delivery of texts sent: an undelivered text is sent again."""
    with db.session() as session:
        due = list(session.exec(select(Notification).where(Notification.status.in_(["pending", "failed"]), Notification.next_try_at <= now)))
        awaiting = list(session.exec(select(Notification).where(
            Notification.status == "sent", Notification.provider_id.is_not(None), Notification.next_try_at <= now)))
    for note in awaiting:
        if sms is not None:
            _read_delivery(note, sms, settings, now)
            with db.transaction() as session:
                session.add(note)
    for note in due:
        provider_id = None
        try:
            if note.channel == "sms":
                if sms is None:
                    raise DeliveryError("no SMS provider configured ([sms] in config/safecall.toml)")
                provider_id = sms.send(SmsMessage(note.recipient, note.body, note.template, json.loads(note.variables or "{}")))
            else:
                if mailer is None:
                    raise DeliveryError("no [smtp] section in config/safecall.toml")
                mailer.send([note.recipient], note.body.split(".")[0][:80], note.body)
        except DeliveryError as exc:
            note.attempts += 1
            _retry_later(note, str(exc), settings, now)
        else:
            note.status, note.sent_at = "sent", now
            note.attempts += 1
            note.provider_id, note.delivery_status = provider_id, None
            if provider_id:
                note.next_try_at = now + REPORT_FIRST_AFTER
            log_event(log, "notification_sent", key=note.key, recipient=_masked(note), provider_id=provider_id)
        with db.transaction() as session:
            session.add(note)


REPORT_FIRST_AFTER = timedelta(minutes=1)


def _read_delivery(note: Notification, sms: SmsSender, settings: Settings, now: datetime) -> None:
    """The provider's report on a text sent: delivered, still on its way (asked again later), or failed (sent again)."""
    # Asked again after half the time it has been on its way: often at first, hourly at most.
    ask_again = now + min(timedelta(hours=1), max(REPORT_FIRST_AFTER, (now - note.sent_at) / 2))
    try:
        report = sms.report(note.provider_id)
    except DeliveryError as exc:
        note.next_try_at = ask_again  # the text itself may well have arrived: ask, do not resend
        log_event(log, "notification_report_unread", level=logging.WARNING, key=note.key, error=phones.mask_text(str(exc)))
        return
    note.delivery_status = report.status
    if not report.done:
        note.next_try_at = ask_again
    elif report.delivered:
        note.status, note.delivered_at = "delivered", now
        log_event(log, "notification_delivered", key=note.key, recipient=_masked(note), status=report.status)
    else:
        _retry_later(note, f"not delivered: {report.status}", settings, now)


def _retry_later(note: Notification, error: str, settings: Settings, now: datetime) -> None:
    note.last_error = phones.mask_text(error)  # stored and shown: no guardian's whole number
    failed = note.attempts >= settings.delivery.max_attempts
    note.status = "failed" if failed else "pending"  # failed is still retried, hourly: shown, never dropped
    note.next_try_at = now + retry_delay(settings.delivery, note.attempts)
    log_event(log, "notification_failed" if failed else "notification_retry", level=logging.ERROR if failed else logging.WARNING,
              key=note.key, recipient=_masked(note), error=note.last_error)


def _masked(note: Notification) -> str:
    return phones.mask(note.recipient) if note.channel == "sms" else note.recipient
