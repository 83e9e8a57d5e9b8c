"""The audit trail: who did what, when it was for and when it was really written. `safecall audit` reads it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from safecall.store import AuditEvent, Database, audit


def audit_events(db: Database, *, actor: str | None = None, action: str | None = None, subject: str | None = None,
                 since: datetime | None = None, until: datetime | None = None, limit: int = 200) -> list[AuditEvent]:
    """The trail, newest first; `since`/`until` filter on the real time it was written; `action` may end in '*'."""
    with db.session() as session:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        if action:
            query = query.where(AuditEvent.action.like(action[:-1] + "%") if action.endswith("*") else AuditEvent.action == action)
        if subject:
            query = query.where(AuditEvent.subject == subject)
        if since:
            query = query.where(AuditEvent.real_at >= since)
        if until:
            query = query.where(AuditEvent.real_at < until)
        return list(session.exec(query))


def log_access(db: Database, *, at: datetime, action: str, subject: str, detail: str = "", actor: str | None = None) -> None:
    """A read or an export of personal data (or a refused login), in its own transaction: the read itself changes nothing."""
    with db.transaction() as session:
        audit(session, at=at, action=action, subject=subject, detail=detail, actor=actor)
