from safecall.store.db import Database, StoreError, audit, current_actor
from safecall.store.models import (
    DISPOSITION_KOREAN,
    FINAL_STATES,
    Attempt,
    AttemptStatus,
    AuditEvent,
    CampaignRun,
    Delivery,
    Disposition,
    MemberState,
    Notification,
    Person,
    RunMember,
    RunState,
    Signal,
    TaskKind,
    TaskStatus,
    VisitTask,
    person_attempts,
)

__all__ = [
    "DISPOSITION_KOREAN", "FINAL_STATES", "AttemptStatus", "RunState", "TaskKind", "TaskStatus",
    "Attempt", "AuditEvent", "CampaignRun", "Database", "Delivery", "Disposition", "MemberState",
    "Notification", "Person", "Signal", "RunMember", "StoreError", "VisitTask", "audit", "current_actor", "person_attempts",
]
