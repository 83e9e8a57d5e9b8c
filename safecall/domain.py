"""The shared vocabulary at the bottom of the house: every status, kind and role, and the groups of them the rules use.

Nothing here imports from the project. Values are what the database stores, so a StrEnum member equals its text.
"""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    """What one attempt came to."""

    ACKNOWLEDGED = "acknowledged"
    HELP_REQUESTED = "help_requested"
    ANSWERED_NO_KEY = "answered_no_key"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    INVALID_NUMBER = "invalid_number"
    MACHINE = "machine"
    UNKNOWN = "unknown"  # the outcome was lost (crash, lost callback); never an acknowledgement


# The words people see for each result (docs/glossary.md; safecall/glossary.py reads them from here).
DISPOSITION_KOREAN = {
    Disposition.ACKNOWLEDGED: "응답(1번)",
    Disposition.HELP_REQUESTED: "도움 요청(2번)",
    Disposition.ANSWERED_NO_KEY: "받았으나 버튼 안 누름",
    Disposition.NO_ANSWER: "받지 않음",
    Disposition.BUSY: "상대 통화 중",
    Disposition.FAILED: "연결 실패",
    Disposition.INVALID_NUMBER: "없는 번호",
    Disposition.MACHINE: "자동응답기",
    Disposition.UNKNOWN: "결과 불명",
}


class MemberState(StrEnum):
    """Where a person stands in a run."""

    PENDING = "pending"
    IN_CALL = "in_call"
    ACKNOWLEDGED = "acknowledged"
    HELP_REQUESTED = "help_requested"
    UNREACHABLE = "unreachable"  # final non-responder: a home visit is owed
    WITHDRAWN = "withdrawn"  # paused or closed after launch; not called


FINAL_STATES = (MemberState.ACKNOWLEDGED, MemberState.HELP_REQUESTED, MemberState.UNREACHABLE, MemberState.WITHDRAWN)


class AttemptStatus(StrEnum):
    PLACING = "placing"  # written before the call is placed; open until its end is recorded
    DONE = "done"


class RunState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TaskKind(StrEnum):
    VISIT = "visit"  # a home visit by the person's team
    CALLBACK = "callback"  # a same-day call from the welfare officer
    NUMBER = "number"  # the officer fixes a number that proved not to exist


class TaskStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# An attempt that reached the person: their answer stands for the week.
ANSWERED = (Disposition.ACKNOWLEDGED, Disposition.HELP_REQUESTED)
CHECKIN_DIGIT = "tap"  # an attempt's digit for a one-tap check-in (safecall/checkin.py): no call, so marked apart


class PersonStatus(StrEnum):
    """Whether a person on the roster is called."""

    ACTIVE = "active"
    PAUSED = "paused"  # e.g. hospitalised until a date: not called until then
    CLOSED = "closed"  # moved away, deceased, withdrew: never called again


class WebRole(StrEnum):
    """What a web account may see and do."""

    TEAM = "team"  # one visit team's lists
    OFFICER = "officer"  # every team, call-backs, reports
    ADMIN = "admin"  # officers' rights and the accounts


class SendStatus(StrEnum):
    """Where a message to a person outside (a team's list, a text or an e-mail) stands."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"  # the SMS provider reported it reached the phone
    FAILED = "failed"  # still retried, and shown: never dropped


class OutboxKind(StrEnum):
    """What a message in the outbox is (one table, one retry loop: safecall/outbox.py)."""

    GUARDIAN_TEXT = "guardian_text"  # the campaign's text to a person's guardian
    OFFICER_ALERT = "officer_alert"  # an e-mail or text to a welfare officer, team lead or the duty officer
    TEAM_LIST = "team_list"  # one team's list for one day, by e-mail (its text is written when it is sent)
    CHECKIN_LINK = "checkin_link"  # a one-tap check-in link to the person
    PRECALL_NOTICE = "precall_notice"  # the morning notice of a first call later today


class Channel(StrEnum):
    """How a message leaves."""

    SMS = "sms"  # SMS, LMS or 알림톡
    EMAIL = "email"
