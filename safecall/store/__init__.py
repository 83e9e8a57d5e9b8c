from safecall.store.db import Database, StoreError, audit, current_actor, real_now
from safecall.store.models import (
    DISPOSITION_KOREAN,
    FINAL_STATES,
    Attempt,
    AttemptStatus,
    AuditChain,
    AuditEvent,
    CampaignRun,
    CheckinLink,
    HelpCall,
    LoginCount,
    Disposition,
    MemberState,
    OutboxMessage,
    Person,
    RunMember,
    RunState,
    Signal,
    TaskKind,
    TaskStatus,
    VisitTask,
    WebSession,
    WebUser,
    person_attempts,
)

__all__ = [
    "DISPOSITION_KOREAN", "FINAL_STATES", "AttemptStatus", "RunState", "TaskKind", "TaskStatus",
    "Attempt", "AuditChain", "AuditEvent", "LoginCount", "WebSession", "CampaignRun", "CheckinLink", "Database", "HelpCall", "Disposition", "MemberState",
    "OutboxMessage", "Person", "Signal", "RunMember", "StoreError", "VisitTask", "WebUser", "audit", "current_actor", "person_attempts", "real_now",
]
