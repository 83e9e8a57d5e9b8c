from safecall.store.db import Database, StoreError, audit, current_actor
from safecall.store.models import (
    Attempt,
    AuditEvent,
    CampaignRun,
    Disposition,
    MemberState,
    Person,
    RunMember,
    VisitTask,
)

__all__ = [
    "Attempt", "AuditEvent", "CampaignRun", "Database", "Disposition", "MemberState",
    "Person", "RunMember", "StoreError", "VisitTask", "audit", "current_actor",
]
