from safecall.store.db import Database, StoreError, audit, current_actor
from safecall.store.models import (
    Attempt,
    AuditEvent,
    CampaignRun,
    Delivery,
    Disposition,
    MemberState,
    Notification,
    Person,
    RunMember,
    Signal,
    VisitTask,
    person_attempts,
)

__all__ = [
    "Attempt", "AuditEvent", "CampaignRun", "Database", "Delivery", "Disposition", "MemberState",
    "Notification", "Person", "Signal", "RunMember", "StoreError", "VisitTask", "audit", "current_actor", "person_attempts",
]
