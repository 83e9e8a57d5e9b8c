"""`safecall doctor`: is this instance healthy? Database integrity and schema, file permissions, campaigns, trunks."""

from __future__ import annotations

import stat
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from safecall.campaign import check_campaign, list_campaigns
from safecall.errors import SafeCallError
from safecall.services import Services
from safecall.telephony.base import Check


def _private(path: Path, mode: int) -> Check:
    if not path.exists():
        return Check(f"permissions {path.name}", True, f"{path} does not exist yet")
    actual = stat.S_IMODE(path.stat().st_mode)
    ok = actual & 0o077 == 0
    return Check(f"permissions {path.name}", ok, f"{path} is {actual:o}" + ("" if ok else f"; should be {mode:o} (chmod {mode:o} {path})"))


def run_doctor(services: Services, wait_seconds: float = 10) -> list[Check]:
    checks: list[Check] = []
    db = services.db
    with db.engine.connect() as connection:
        if db.is_sqlite:
            result = connection.execute(sa.text("PRAGMA integrity_check")).scalar()
            checks.append(Check("database integrity", result == "ok", f"integrity_check: {result}"))
            mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
            checks.append(Check("database journal", mode == "wal", f"journal_mode={mode}"))
    state = db.schema_state()
    checks.append(Check("schema revision", state.current == state.head,
                        f"database {state.describe()}, SafeCall {state.head}" + ("" if state.current == state.head else "; run `safecall db upgrade`")))
    if db.is_sqlite:
        database = Path(make_url(db.url).database)
        checks += [_private(database, 0o600), _private(database.parent, 0o700)]
    checks.append(_private(services.instance.outbox, 0o700))
    for name in list_campaigns(services.instance):
        _, problems = check_campaign(services.instance, name)
        checks.append(Check(f"campaign {name}", not problems, "valid" if not problems else "; ".join(problems)))
    for name in services.instance.trunks.trunks:
        try:
            for check in services.check_trunk(name, wait_seconds=wait_seconds):
                checks.append(Check(f"trunk {name}: {check.name}", check.ok, check.detail))
        except SafeCallError as exc:
            checks.append(Check(f"trunk {name}", False, str(exc)))
    return checks
