"""The layers of the house, read from the code's own imports (docs/architecture.md is the map)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "safecall"


def imported_modules(path: Path) -> set[str]:
    """Every safecall module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "safecall" or name.startswith("safecall.")}


def test_the_domain_floor_imports_nothing_from_the_project():
    assert imported_modules(PACKAGE / "domain.py") == set()


def test_the_store_does_not_import_settings_or_anything_above_it():
    above = (
        "safecall.settings",
        "safecall.services",
        "safecall.lifecycle",
        "safecall.cli",
        "safecall.web",
        "safecall.telephony",
    )
    for path in sorted((PACKAGE / "store").rglob("*.py")):
        offending = {name for name in imported_modules(path) if name.startswith(above)}
        assert not offending, f"{path.relative_to(PACKAGE.parent)} imports {sorted(offending)}"


def test_pure_rules_do_not_import_the_database():
    for name in ("ordering.py", "campaign.py", "policy.py", "domain.py", "dburl.py", "conversation.py"):
        store = {m for m in imported_modules(PACKAGE / name) if m.startswith("safecall.store")}
        assert not store, f"safecall/{name} imports {sorted(store)}"


# ---- the HTTP apps: routers whose dependencies come from app.state (issue 26, item 5) -------------
HTTP_MODULES = sorted((PACKAGE / "web").rglob("*.py")) + [PACKAGE / "telephony" / "twilio" / "webhooks.py"]
LONGEST_FUNCTION = 80


def test_no_function_of_the_http_apps_is_longer_than_80_lines():
    long = []
    for path in HTTP_MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - first + 1 > LONGEST_FUNCTION:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                        f"({node.end_lineno - first + 1} lines)"
                    )
    assert len(HTTP_MODULES) > 5 and not long, long


def an_office_with_one_officer(root, clock, officer: str):
    from conftest import Cli
    from web_fixtures import PASSWORD, web_settings

    office = Cli(root, clock)
    assert office.runner.invoke(office.app, ["init", str(root)]).exit_code == 0
    web_settings(office)
    added = office.runner.invoke(
        office.app,
        ["--config", str(root), "users", "add", officer, "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    return office


def test_two_web_apps_in_one_process_serve_each_their_own_office(tmp_path, clock):
    """The routers are shared module objects; what they serve comes from each app's state."""
    import re

    from sqlmodel import select
    from starlette.testclient import TestClient
    from web_fixtures import PASSWORD, make_app

    from safecall.store import AuditEvent

    offices = {
        "kim": an_office_with_one_officer(tmp_path / "a", clock, "kim"),
        "lee": an_office_with_one_officer(tmp_path / "b", clock, "lee"),
    }
    apps = {name: make_app(office) for name, office in offices.items()}

    def log_in(app, username: str, password: str = PASSWORD) -> int:
        http = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
        return http.post("/login", data={"username": username, "password": password, "csrf": csrf}).status_code

    assert log_in(apps["kim"], "kim") == 303 and log_in(apps["lee"], "lee") == 303
    assert (
        log_in(apps["kim"], "lee") == 401 and log_in(apps["lee"], "kim") == 401
    )  # each app checks its own office's users
    for _ in range(5):
        log_in(apps["lee"], "kim", "wrong password!")
    assert log_in(apps["lee"], "lee") == 429  # the other office's limiter counted these: not this one's
    assert log_in(apps["kim"], "kim") == 303
    for name, office in offices.items():
        with office.db().session() as session:
            logins = {e.subject for e in session.exec(select(AuditEvent).where(AuditEvent.action == "web.login"))}
        assert logins == {f"user {name}"}, (name, logins)


def test_two_webhook_apps_in_one_process_check_each_their_own_signature():
    from starlette.testclient import TestClient
    from twilio.request_validator import RequestValidator

    from safecall.telephony.twilio.webhooks import create_webhook_app

    def app(token: str):
        return create_webhook_app(
            public_base_url="https://safecall.example.org",
            auth_token=token,
            sink=None,
            now=lambda: None,
            on_event=lambda event: None,
        )

    first, second = TestClient(app("first-auth-token")), TestClient(app("second-auth-token"))
    params = {"CallSid": "CA1", "ErrorCode": "11200"}
    signature = RequestValidator("first-auth-token").compute_signature(
        "https://safecall.example.org/twilio/fallback", params
    )
    signed = dict(data=params, headers={"X-Twilio-Signature": signature})
    answered = first.post("/twilio/fallback", **signed)
    assert answered.status_code == 200 and "<Hangup" in answered.text and "죄송합니다" in answered.text
    refused = second.post("/twilio/fallback", **signed)
    assert refused.status_code == 403 and refused.text == "invalid signature"
