"""`safecall doctor`: is this instance healthy? Database integrity, writability, space and schema, file permissions,
campaigns, trunks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import smtplib
import sqlite3
import ssl
import stat
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from safecall.campaign import check_campaign, list_campaigns
from safecall.configfiles import SecretRef
from safecall.errors import ConfigError, Lines, Message, SafeCallError
from safecall.i18n import N_
from safecall.services import Services
from safecall.settings import DATABASE_URL_ENV, Instance, SmtpSettings
from safecall.store import Database
from safecall.store.db import current_actor
from safecall.telephony.base import Check
from safecall.web.auth import MIN_SECRET

PROBE_WAIT_SECONDS = 2.0  # how long the write test waits for another process's lock
MIN_FREE_BYTES = 64 * 1024 * 1024  # a week's calls of a district take a few MiB; less than this is a disk about to fill


def _private(path: Path, mode: int) -> Check:
    name = Message(N_("permissions {name}"), name=path.name)
    if not path.exists():
        return Check(name, True, Message(N_("{path} does not exist yet"), path=path))
    actual = stat.S_IMODE(path.stat().st_mode)
    ok = actual & 0o077 == 0
    if ok:
        return Check(name, ok, Message(N_("{path} is {mode}"), path=path, mode=f"{actual:o}"))
    return Check(
        name,
        ok,
        Message(
            N_("{path} is {mode}; should be {wanted} (chmod {wanted} {path})"),
            path=path,
            mode=f"{actual:o}",
            wanted=f"{mode:o}",
        ),
    )


def sqlite_fault(file: Path, exc: Exception) -> Message:
    """What a SQLite error on `file` means for the officer, and what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return Message(
            N_(
                "{file} is locked by another process ({text}): "
                "a SafeCall command or scheduler still running, or a stuck one "
                "(`fuser {file}` names it); nothing can be recorded until it ends"
            ),
            file=file,
            text=text,
        )
    if "readonly" in text or "read-only" in text:
        return Message(
            N_(
                "{file} cannot be written ({text}): make the file and its folder writable by {user}, the user "
                "that runs SafeCall (chmod 600 {file}; chmod 700 {folder}), or remount its file system read-write"
            ),
            file=file,
            text=text,
            user=current_actor(),
            folder=file.parent,
        )
    if "full" in text:
        return Message(
            N_("{file} is full ({text}): free space on its disk (`df -h {folder}`), then run doctor again"),
            file=file,
            text=text,
            folder=file.parent,
        )
    return Message(N_("{file}: {text}"), file=file, text=text)


def _sqlite_writable(db: Database, file: Path) -> Check:
    """A real write, rolled back: a lock held by another process, a read-only file or a full database refuses it."""
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None  # an open connection has its driver's
        raw.execute(f"PRAGMA busy_timeout = {int(min(PROBE_WAIT_SECONDS, db.busy_timeout) * 1000)}")
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.execute("CREATE TABLE safecall_doctor_probe (x BLOB)")
                raw.execute("INSERT INTO safecall_doctor_probe VALUES (zeroblob(16384))")  # a few new pages
            finally:
                if raw.in_transaction:  # SQLite has already rolled back a statement that found the database full
                    raw.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return Check(Message(N_("database writable")), False, sqlite_fault(file, exc))
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(db.busy_timeout * 1000)}")
    return Check(
        Message(N_("database writable")), True, Message(N_("{file}: a test write was made and rolled back"), file=file)
    )


def _sqlite_space(db: Database, file: Path, disk_usage: Callable) -> Check:
    with db.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        limit = connection.exec_driver_sql("PRAGMA max_page_count").scalar_one()
    if pages >= limit:
        return Check(
            Message(N_("database space")),
            False,
            sqlite_fault(
                file,
                sqlite3.OperationalError(f"database or disk is full: {pages} pages, the most this database may have"),
            ),
        )
    free = disk_usage(file.parent).free
    if free < MIN_FREE_BYTES:
        return Check(
            Message(N_("database space")),
            False,
            sqlite_fault(
                file,
                sqlite3.OperationalError(
                    f"database or disk is full: {free // (1024 * 1024)} MiB free on its disk, "
                    f"SafeCall needs {MIN_FREE_BYTES // (1024 * 1024)} MiB"
                ),
            ),
        )
    return Check(
        Message(N_("database space")),
        True,
        Message(N_("{mib} MiB free on the disk of {file}"), mib=free // (1024 * 1024), file=file),
    )


def _database_checks(db: Database, disk_usage: Callable) -> list[Check]:
    checks: list[Check] = []
    file = db.sqlite_file() if db.is_sqlite else None
    try:
        if file is not None:
            with db.engine.connect() as connection:
                result = connection.execute(sa.text("PRAGMA integrity_check")).scalar()
                checks.append(Check(Message(N_("database integrity")), result == "ok", f"integrity_check: {result}"))
                mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
                checks.append(Check(Message(N_("database journal")), mode == "wal", f"journal_mode={mode}"))
            checks.append(_sqlite_writable(db, file))
            checks.append(_sqlite_space(db, file, disk_usage))
        state = db.schema_state()
    except (SafeCallError, sa.exc.DBAPIError, sqlite3.Error) as exc:
        detail: str
        if file is not None:
            detail = sqlite_fault(file, getattr(exc, "orig", exc))
        else:
            detail = exc.message() if isinstance(exc, SafeCallError) else db.error_text(exc)
        checks.append(
            Check(
                Message(N_("database")),
                False,
                Message(N_("cannot use {url}: {detail}"), url=db.safe_url(), detail=detail),
            )
        )
        return checks
    schema = (
        Message(N_("database {state}, SafeCall {head}"), state=state.describe(), head=state.head)
        if state.current == state.head
        else Message(
            N_("database {state}, SafeCall {head}; run `safecall db upgrade`"), state=state.describe(), head=state.head
        )
    )
    checks.append(Check(Message(N_("schema revision")), state.current == state.head, schema))
    if file is not None:
        checks += [_private(file, 0o600), _private(file.parent, 0o700)]
    return checks


def _audit_chain(db: Database) -> Check:
    """The audit's hash chain: an edited or deleted row is named (safecall/audit.py)."""
    from safecall.audit import verify_chain

    try:
        report = verify_chain(db)
    except (SafeCallError, sa.exc.DBAPIError) as exc:  # an old schema: the schema check says what to do
        return Check(
            Message(N_("audit chain")), False, exc.message() if isinstance(exc, SafeCallError) else db.error_text(exc)
        )
    if report.ok:
        return Check(
            Message(N_("audit chain")), True, Message(N_("{rows} rows, none changed or deleted"), rows=report.rows)
        )
    return Check(Message(N_("audit chain")), False, Lines(report.problems[:10], sep="; "))


def run_doctor(services: Services, wait_seconds: float = 10, disk_usage: Callable = shutil.disk_usage) -> list[Check]:
    checks = _database_checks(services.db, disk_usage)
    if any(check.name == "schema revision" and check.ok for check in checks):  # the chain's columns are there
        checks.append(_audit_chain(services.db))
    checks.append(_private(services.instance.outbox, 0o700))
    for name in list_campaigns(services.instance):
        _, problems = check_campaign(services.instance, name)
        checks.append(
            Check(
                Message(N_("campaign {name}"), name=name),
                not problems,
                Message(N_("valid")) if not problems else Lines(problems, sep="; "),
            )
        )
    for name in services.instance.trunks.trunks:
        try:
            for check in services.check_trunk(name, wait_seconds=wait_seconds):
                checks.append(
                    Check(Message(N_("trunk {name}: {check}"), name=name, check=check.name), check.ok, check.detail)
                )
        except SafeCallError as exc:
            checks.append(Check(Message(N_("trunk {name}"), name=name), False, exc.message()))
    return checks + service_checks(services.instance, services.now())


REACH_TIMEOUT_SECONDS = 3.0  # SMTP and the SMS provider: a service that cannot reach them in this long is down
BACKUP_MAX_AGE = timedelta(hours=26)  # a daily backup, with room for a late one
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def needed_secrets(instance: Instance) -> list[tuple[str, SecretRef]]:
    """Every secret reference an enabled part of the instance needs, with the key it sits under."""
    settings = instance.settings
    needed: list[tuple[str, SecretRef]] = []
    if isinstance(settings.database_url, SecretRef) and not instance.environ.get(DATABASE_URL_ENV):
        needed.append(("database_url", settings.database_url))
    if settings.smtp and settings.smtp.password:
        needed.append(("smtp.password", settings.smtp.password))
    if settings.delivery.attachments and settings.delivery.attachment_password:
        needed.append(("delivery.attachment_password", settings.delivery.attachment_password))
    if settings.sms.provider == "solapi":  # which requires both (SmsSettings._complete)
        needed += [
            (key, ref)
            for key, ref in (("sms.api_key", settings.sms.api_key), ("sms.api_secret", settings.sms.api_secret))
            if ref is not None
        ]
    if web_enabled(instance):
        needed.append(("web.secret_key", settings.web.secret_key))
    return needed


def web_enabled(instance: Instance) -> bool:
    """The web app is part of this instance when its settings have a [web] table (docs/web.md)."""
    return "web" in instance.settings.model_fields_set


def secret_checks(instance: Instance) -> list[Check]:
    checks = []
    for key, ref in needed_secrets(instance):
        name = Message(N_("secret {key}"), key=key)
        try:
            value = ref.resolve(instance.environ)
        except ConfigError as exc:
            checks.append(
                Check(
                    name,
                    False,
                    Message(
                        N_("{problem}; set it in the service's secrets (docs/operations.md)"), problem=exc.message()
                    ),
                )
            )
            continue
        if key == "web.secret_key" and len(value) < MIN_SECRET:
            checks.append(
                Check(
                    name,
                    False,
                    Message(
                        N_("{source} has {length} characters, at least {least} are needed (openssl rand -hex 32)"),
                        source=ref.describe(),
                        length=len(value),
                        least=MIN_SECRET,
                    ),
                )
            )
            continue
        checks.append(Check(name, True, Message(N_("set ({source})"), source=ref.describe())))
    return checks


def smtp_check(smtp: SmtpSettings, timeout: float = REACH_TIMEOUT_SECONDS) -> Check:
    """The mail server answers a greeting and EHLO within `timeout`; nothing is sent, no login is made."""
    name = Message(N_("SMTP {host}:{port}"), host=smtp.host, port=smtp.port)
    try:
        client: smtplib.SMTP
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            code, _ = client.ehlo()
            if smtp.security == "starttls" and not client.has_extn("starttls"):
                return Check(
                    name,
                    False,
                    Message(N_("the server does not offer STARTTLS; set [smtp] security to what it offers")),
                )
    except (smtplib.SMTPException, OSError) as exc:
        return Check(
            name,
            False,
            Message(N_("cannot reach it within {seconds} s: {reason}"), seconds=f"{timeout:g}", reason=_reason(exc)),
        )
    return Check(name, True, Message(N_("answered (EHLO {code})"), code=code))


def sms_check(instance: Instance, timeout: float = REACH_TIMEOUT_SECONDS) -> Check | None:
    """SOLAPI answers a signed read of one message within `timeout`: reached, and the key and secret are accepted."""
    sms = instance.settings.sms
    if sms.provider != "solapi":
        return None
    name = Message(N_("SMS provider {provider}"), provider=sms.provider)
    # Provider solapi requires both (SmsSettings._complete).
    assert sms.api_key is not None and sms.api_secret is not None
    try:
        key, secret = sms.api_key.resolve(instance.environ), sms.api_secret.resolve(instance.environ)
    except ConfigError as exc:
        return Check(name, False, exc.message())
    date = datetime.now(UTC).isoformat(timespec="seconds")
    salt = secrets.token_hex(16)
    signature = hmac.new(secret.encode(), (date + salt).encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{sms.base_url}/messages/v4/list?limit=1",
        headers={"Authorization": f"HMAC-SHA256 apiKey={key}, date={date}, salt={salt}, signature={signature}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return Check(
                name,
                False,
                Message(N_("{url} refused the API key and secret (HTTP {status})"), url=sms.base_url, status=exc.code),
            )
        return Check(name, False, Message(N_("{url} answered HTTP {status}"), url=sms.base_url, status=exc.code))
    except (urllib.error.URLError, OSError) as exc:
        return Check(
            name,
            False,
            Message(
                N_("cannot reach {url} within {seconds} s: {reason}"),
                url=sms.base_url,
                seconds=f"{timeout:g}",
                reason=_reason(getattr(exc, "reason", exc)),
            ),
        )
    return Check(name, True, Message(N_("{url} accepted the API key"), url=sms.base_url))


def web_checks(instance: Instance) -> list[Check]:
    web = instance.settings.web
    checks = []
    if web.host in ("0.0.0.0", "::", ""):
        checks.append(
            Check(
                Message(N_("web host")),
                False,
                Message(
                    N_(
                        "[web] host = {host!r} listens on every network; "
                        "use 127.0.0.1 behind the TLS proxy (docs/web.md)"
                    ),
                    host=web.host,
                ),
            )
        )
    else:
        checks.append(Check(Message(N_("web host")), True, Message(N_("listens on {host}"), host=web.host)))
    if not web.secure_cookies:
        checks.append(
            Check(
                Message(N_("web cookies")),
                False,
                Message(
                    N_(
                        "[web] secure_cookies = false sends the session cookie without HTTPS; "
                        "set it to true (false only for a trial on 127.0.0.1)"
                    )
                ),
            )
        )
    else:
        checks.append(Check(Message(N_("web cookies")), True, Message(N_("session cookies only over HTTPS"))))
    return checks


def backup_check(instance: Instance, now: datetime) -> Check | None:
    from safecall.backup import list_backups

    if not instance.settings.backup.daily:
        return None
    backups = list_backups(instance.backup_dir)
    if not backups:
        return Check(
            Message(N_("backups")),
            False,
            Message(
                N_("no backup in {folder} yet; the scheduler takes one daily at {at} (or run `safecall backup`)"),
                folder=instance.backup_dir,
                at=instance.settings.backup.at,
            ),
        )
    age = now - backups[-1].taken_at
    hours = int(age.total_seconds() // 3600)
    if age > BACKUP_MAX_AGE:
        return Check(
            Message(N_("backups")),
            False,
            Message(
                N_("the newest backup, {path}, is {hours} hours old: is the scheduler running?"),
                path=backups[-1].path,
                hours=hours,
            ),
        )
    return Check(
        Message(N_("backups")),
        True,
        Message(N_("the newest backup, {path}, is {hours} hours old"), path=backups[-1].path, hours=hours),
    )


def service_checks(instance: Instance, now: datetime, timeout: float = REACH_TIMEOUT_SECONDS) -> list[Check]:
    """What the services need beyond the database: secrets, SMTP, the SMS provider, the web's settings, backups."""
    checks = secret_checks(instance)
    if instance.settings.smtp:
        checks.append(smtp_check(instance.settings.smtp, timeout))
    checks += [c for c in (sms_check(instance, timeout), backup_check(instance, now)) if c is not None]
    if web_enabled(instance):
        checks += web_checks(instance)
    return checks


def _reason(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
