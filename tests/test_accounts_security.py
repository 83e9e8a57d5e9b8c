"""Attacks on web accounts (issue 28, item 8): weak passwords, and user names that look like another account."""

from __future__ import annotations

import pytest
from web_fixtures import PASSWORD


def add(cli, name: str, password: str = PASSWORD, role: str = "officer"):
    return cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", name, "--role", role, "--password-stdin"],
        input=password + "\n",
    )


@pytest.mark.parametrize("weak", [" " * 10, "a" * 10, "password123", "1234567890", "qwertyuiop", "kim-password"])
def test_a_weak_password_is_refused_however_long(cli, weak):
    refused = add(cli, "kim", weak)
    assert refused.exit_code == 1 and ("too easy to guess" in refused.output or "at least 10" in refused.output)
    assert "kim" not in cli("users", "list").output


def test_a_strong_password_is_taken_and_reset_checks_it_too(cli):
    assert add(cli, "kim", "maple river lantern 42").exit_code == 0
    weak = cli.runner.invoke(
        cli.app, ["--config", str(cli.root), "users", "reset", "kim", "--password-stdin"], input="aaaaaaaaaaaa\n"
    )
    assert weak.exit_code == 1 and "too easy to guess" in weak.output


def test_names_that_look_like_another_account_are_refused_or_become_what_they_look_like(cli):
    assert add(cli, "admin", role="admin").exit_code == 0
    cyrillic = add(cli, "\u0430dmin")  # Cyrillic а
    assert cyrillic.exit_code == 1 and "use at most 32 Latin letters" in cyrillic.output
    fullwidth = add(cli, "ａｄｍｉｎ")  # NFKC: admin, which exists
    assert fullwidth.exit_code == 1 and "already exists" in fullwidth.output
    assert add(cli, "Admin").exit_code == 1  # one account per spelling, whatever the case
    assert "Created officer2" in add(cli, "officer²").output  # stored as it will look
    for bad in ("adm\u200bin", "ad min", "admin\u0301", "관리자\u3164", "admin-", "a" * 33, "ad--min"):
        assert add(cli, bad).exit_code == 1, repr(bad)
    assert "Created 김담당" in add(cli, "김담당").output
    listed = cli("users", "list", "--format", "json").output
    assert "officer2" in listed and "officer²" not in listed and "\u0430" not in listed


def test_a_name_typed_in_another_form_logs_in_to_the_one_account(cli):
    from starlette.testclient import TestClient
    from test_web_sessions_and_logins import log_in
    from web_fixtures import make_app, web_settings

    web_settings(cli)
    assert add(cli, "officer").exit_code == 0
    http = TestClient(make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)
    assert log_in(http, "ＯＦＦＩＣＥＲ").status_code == 303
