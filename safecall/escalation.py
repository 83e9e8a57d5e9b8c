"""Escalation: overdue visits, guardians told by SMS or 알림톡, officers told by e-mail. Each message is sent once,
and a text is followed to its delivery."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta

from sqlmodel import col, select

from safecall import phones
from safecall.campaign import CampaignDef
from safecall.domain import Channel, OutboxKind, TaskKind, TaskStatus
from safecall.events import log_event
from safecall.lifecycle import flag_task_overdue
from safecall.notify import DeliveryError, Mailer, SmsMessage, SmsSender, fit_in_one_sms
from safecall.outbox import HandedOver, follow_reports, is_queued, queue, send_due
from safecall.settings import Settings
from safecall.store import CampaignRun, Database, OutboxMessage, Person, VisitTask, audit, stored_id

log = logging.getLogger("safecall.escalation")
# Every kind of message but the teams' lists (delivery.py sends those, with their files).
NOTIFICATION_KINDS = tuple(kind for kind in OutboxKind if kind != OutboxKind.TEAM_LIST)


def queue_officer_alert(session, key: str, channel: Channel, recipient: str, body: str, now: datetime) -> None:
    queue(session, key=key, kind=OutboxKind.OFFICER_ALERT, channel=channel, recipient=recipient, body=body, now=now)


def guardian_key(person_id: int, week_start: date) -> str:
    """One text per person and week, however many runs (weekly, signal checks) gave them a task that week."""
    return f"guardian:person:{person_id}:week:{week_start.isoformat()}"


def notify_officers(
    db: Database, settings: Settings, teams: list[str], *, key: str, body: str, now: datetime, text: str | None = None
) -> list[str]:
    """One e-mail under `key` to the officers of `teams` (every team when empty), queued once whatever the
    number of calls, and `text` to their mobiles ([teams] officer_phone) when given; returns where it was queued for."""
    chosen = [t for t in settings.teams if not teams or t.name in teams]
    officers = sorted({email for t in chosen if (email := t.officer_email or t.email)})
    mobiles = sorted({phones.normalise(t.officer_phone) for t in chosen if t.officer_phone}) if text else []
    with db.transaction() as session:
        for officer in officers:
            queue_officer_alert(session, f"{key}:{officer}", Channel.EMAIL, officer, body, now)
        for mobile in mobiles:  # none without a text
            queue_officer_alert(session, f"{key}:{mobile}", Channel.SMS, mobile, text or "", now)
    return officers + [phones.mask(m) for m in mobiles]


def mark_overdue(db: Database, settings: Settings, *, now: datetime) -> list[int]:
    """Visits with no outcome in time: flagged (top of the next list) and the officer is told."""
    cutoff = now - timedelta(hours=settings.visits.overdue_after_hours)
    teams = {t.name: t for t in settings.teams}
    flagged = []
    with db.transaction() as session:
        tasks = session.exec(
            select(VisitTask, Person)
            .join(Person, col(Person.id) == VisitTask.person_id)
            .where(
                VisitTask.status == TaskStatus.OPEN,
                VisitTask.kind == TaskKind.VISIT,
                VisitTask.overdue == False,  # noqa: E712 (an SQL expression, not a Python truth test)
                VisitTask.created_at <= cutoff,
            )
        )
        for task, _person in tasks:
            flag_task_overdue(task)
            session.add(task)
            flagged.append(stored_id(task))
            audit(session, at=now, action="visit.overdue", subject=f"task {task.id}", actor="safecall")
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if officer:
                # No name or number in an e-mail: the task number and a link to it (behind the login).
                queue_officer_alert(
                    session,
                    f"officer-overdue:task:{task.id}",
                    Channel.EMAIL,
                    officer,
                    f"[안심콜] 방문 결과 기록 기한 초과: 과제 {task.id} ({task.team}). "
                    f"{task.created_on} 생성 후 {settings.visits.overdue_after_hours}시간이 지났습니다. "
                    "내일 명단 맨 위에 올립니다.\n"
                    f"{settings.web.base_url}/task/{task.id}",
                    now,
                )
            log_event(log, "visit_overdue", task=task.id, team=task.team)
    return flagged


def queue_guardian_text(
    session, campaign: CampaignDef, person: Person, task: VisitTask, run: CampaignRun, settings: Settings, now: datetime
) -> bool:
    """The campaign's text to the person's guardian, once per person and week (when the campaign allows it and a
    guardian is on file); True when it is queued, now or before."""
    # Before schema 8 guardian texts were keyed per task: such a task's text went out already.
    if not (campaign.notify.guardian_sms and person.guardian_phone):
        return False
    if is_queued(session, f"guardian:task:{task.id}"):
        return True
    callback = settings.sms.callback()
    template = "guardian_help" if task.kind == TaskKind.CALLBACK else "guardian_unreachable"
    text, name = getattr(campaign.notify, template).format(name=person.name, callback=callback), person.name
    if not campaign.notify.allow_lms:  # one SMS, even for a long name (the rule is in fit_in_one_sms)
        text, name = fit_in_one_sms(getattr(campaign.notify, template), person.name, callback=callback)
    variables = {"name": name, "callback": callback}
    queue(
        session,
        key=guardian_key(stored_id(person), run.week_start),
        kind=OutboxKind.GUARDIAN_TEXT,
        channel=Channel.SMS,
        recipient=person.guardian_phone,
        body=text,
        now=now,
        template=template,
        variables=json.dumps(variables, ensure_ascii=False),
    )
    return True


def queue_escalations(db: Database, settings: Settings, campaigns: dict[str, CampaignDef], *, now: datetime) -> None:
    """Guardian SMS (when the campaign allows it) and the officer's same-day callback notice, for new tasks."""
    teams = {t.name: t for t in settings.teams}
    with db.transaction() as session:
        rows = session.exec(
            select(VisitTask, Person, CampaignRun)
            .join(Person, col(Person.id) == VisitTask.person_id)
            .join(CampaignRun, col(CampaignRun.id) == VisitTask.run_id)
            .where(VisitTask.status == TaskStatus.OPEN)
            .order_by(col(VisitTask.id))
        )
        for task, person, run in rows:
            campaign = campaigns.get(run.campaign)
            if campaign:
                queue_guardian_text(session, campaign, person, task, run, settings, now)
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            if task.kind == TaskKind.CALLBACK and task.risk_speech and settings.sms.duty_officer:
                # No name or number in the text: the task number and the page behind the login.
                queue_officer_alert(
                    session,
                    f"duty-officer-risk:task:{task.id}",
                    Channel.SMS,
                    settings.sms.duty_officer,
                    f"[안심콜] 위험 발언: 과제 {task.id} ({task.team}). "
                    "안심콜 답변에 자살이나 응급 상황을 뜻하는 말이 있었습니다. "
                    f"바로 연락해 주세요. {settings.web.base_url}/callbacks",
                    now,
                )
            if task.kind == TaskKind.CALLBACK and officer:
                queue_officer_alert(
                    session,
                    f"officer-callback:task:{task.id}",
                    Channel.EMAIL,
                    officer,
                    f"[안심콜] 위험 발언, 바로 회신 필요 (과제 {task.id}, {task.team}). "
                    "안심콜 답변에 자살이나 응급 상황을 "
                    f"뜻하는 말이 있었습니다. 바로 연락해 주세요.\n{settings.web.base_url}/callbacks"
                    if task.risk_speech
                    else f"[안심콜] 도움 요청 회신 필요 (과제 {task.id}, {task.team}). "
                    "안심콜에서 도움을 요청하셨습니다 (2번, 말씀 또는 문자 링크). "
                    f"오늘 중으로 연락해 주세요.\n{settings.web.base_url}/callbacks",
                    now,
                )


def send_notifications(
    db: Database, settings: Settings, mailer: Mailer | None, sms: SmsSender | None, *, now: datetime
) -> None:
    """Sends what is due, and reads back the delivery of texts sent: an undelivered text is sent again."""
    if sms is not None:
        follow_reports(db, settings.delivery, sms, now=now)
    send_due(db, settings.delivery, notification_hand_over(mailer, sms), now=now, kinds=NOTIFICATION_KINDS)


def notification_hand_over(mailer: Mailer | None, sms: SmsSender | None):
    """How a text or an e-mail of the outbox is handed over (outbox.send_due does the rest)."""

    def hand_over(note: OutboxMessage) -> HandedOver:
        if note.channel == Channel.SMS:
            if sms is None:
                raise DeliveryError("no SMS provider configured ([sms] in config/safecall.toml)")
            return HandedOver(
                sms.send(SmsMessage(note.recipient, note.body, note.template, json.loads(note.variables or "{}")))
            )
        if mailer is None:
            raise DeliveryError("no [smtp] section in config/safecall.toml")
        mailer.send([note.recipient], note.body.split(".")[0][:80], note.body)
        return HandedOver()

    return hand_over
