"""What a new officer met walking through README "Using it" under LANG=C.UTF-8 (issue 27): a person imported without
consent is stored but never called, and the roster listing and the web person page say so
(they said only 안심콜 이용 중)."""

from __future__ import annotations

from conftest import person_row, write_csv
from sqlmodel import select
from starlette.testclient import TestClient
from test_web_numbers import csrf_of, http_log_in  # noqa: F401
from web_fixtures import PASSWORD, make_app, web_settings

from safecall.store import Person


def test_a_person_without_consent_is_listed_as_not_called(cli, tmp_path):
    cli.use_locale("C.UTF-8")
    imported = cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row("동의분", "010-0123-0001"), person_row("미동의분", "010-0123-0002", consent="")],
            )
        ),
    ).output
    assert "동의 없음 1명 (저장만 하고 전화하지 않음)" in imported
    rows = {
        line.split("│")[2].strip(): line
        for line in cli("recipients", "list").output.splitlines()
        if line.count("│") > 5
    }
    assert "안심콜 이용 중 (동의 없음: 전화하지 않음)" in rows["미동의분"], rows
    assert "동의 없음" not in rows["동의분"] and "안심콜 이용 중" in rows["동의분"]
    web_settings(cli)
    cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "officer", "--role", "officer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    with cli.db().session() as session:
        ids = {p.name: p.id for p in session.exec(select(Person))}
    http = TestClient(make_app(cli), base_url="http://127.0.0.1", follow_redirects=False)
    http_log_in(http, "officer")
    assert "(동의 없음: 전화하지 않음)" in http.get(f"/person/{ids['미동의분']}").text
    assert "동의 없음" not in http.get(f"/person/{ids['동의분']}").text
