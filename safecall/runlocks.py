"""Which process dials a run: a lease on the run's row, taken over when its process died or the lease ran out.

Below the run's launch and lifecycle, so that the dialer holds runs without importing how they are launched.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from safecall.errors import NotFoundError, RunLockedError
from safecall.store import CampaignRun, Database, changed_rows, table_of
from safecall.store.prepared import new_values

RUN = table_of(CampaignRun)


def get_run(session: Session, run_id: int) -> CampaignRun:
    run = session.get(CampaignRun, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run


def lock_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_run_lock(db: Database, run_id: int, owner: str, *, now: datetime, ttl: timedelta) -> None:
    """Only one process dials a run; a lock whose process died, or whose lease ran out, is taken over."""
    with db.transaction() as session:
        run = get_run(session, run_id)
        holder = run.lock_owner
        if holder and holder != owner and run.lock_until and run.lock_until > now and not _owner_is_dead(holder):
            raise RunLockedError(
                f"run {run_id} is being dialled by {holder} (lease until {run.lock_until:%Y-%m-%d %H:%M:%S} UTC)"
            )
        stolen = changed_rows(
            session.execute(
                sa.update(CampaignRun)
                .where(
                    col(CampaignRun.id) == run_id,
                    col(CampaignRun.lock_owner).is_(None) if holder is None else col(CampaignRun.lock_owner) == holder,
                )
                .values(lock_owner=owner, lock_until=now + ttl)
            )
        )
        if stolen != 1:
            raise RunLockedError(f"run {run_id} was locked by another process just now")


_RENEW_LEASE = (
    sa.update(RUN)
    .where(RUN.c.id == sa.bindparam("run_id"), RUN.c.lock_owner == sa.bindparam("owner"))
    .values(new_values("lock_until"))
)


def renew_run_lock(db: Database, run_id: int, owner: str, *, now: datetime, ttl: timedelta) -> None:
    """Extend the lease `owner` holds; if another process took the run over meanwhile, this one must stop."""
    with db.statements() as connection:
        renewed = db.prepared(_RENEW_LEASE).execute(
            connection, {"run_id": run_id, "owner": owner, "new_lock_until": now + ttl}
        )
    if renewed != 1:
        raise RunLockedError(
            f"run {run_id} was taken over by another process while this one was dialling; this one stops"
        )


def release_run_lock(db: Database, run_id: int, owner: str) -> None:
    with db.transaction() as session:
        session.execute(
            sa.update(CampaignRun)
            .where(col(CampaignRun.id) == run_id, col(CampaignRun.lock_owner) == owner)
            .values(lock_owner=None, lock_until=None)
        )
