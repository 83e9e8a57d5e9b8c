"""An office with a week behind it, web accounts, and the web app served by uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import uvicorn
from conftest import SEOUL, person_row, scripted_trunks, write_csv
from live import free_port
from sqlmodel import select

from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Person, VisitTask
from safecall.visits import record_outcome
from safecall.web import create_web_app

SECRET = "a-test-secret-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery"
OFFICERS_NOTE = "자살 생각을 말씀하심, 정신건강복지센터 연계"


def web_settings(cli, extra: str = "") -> None:
    """Plain-HTTP cookies: the tests talk to 127.0.0.1 without the TLS proxy."""
    path = cli.root / "config" / "safecall.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + f'\n[web]\nsecure_cookies = false\nbase_url = "https://safecall.example.org"\n{extra}',
        encoding="utf-8",
    )


def office_with_a_week(cli, tmp_path) -> None:
    """Monday's run: two people in 1팀 and one in 2팀 never answer, one in 1팀 asks for help."""
    web_settings(cli)
    cli.set_trunks(
        scripted_trunks(
            {
                "+821001230001": ["no_answer"],
                "+821001230002": ["no_answer"],
                "+821001230003": ["no_answer"],
                "+821001230004": ["help"],
            }
        )
    )
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row(
                        "<b>김순자</b>", "010-0123-0001", guardian="김보호", guardian_phone="010-0999-0001", risk="상"
                    ),
                    person_row("이영희", "010-0123-0002", dong="삼청동"),
                    person_row("박부암", "010-0123-0003", dong="부암동"),
                    person_row("최도움", "010-0123-0004"),
                ],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")  # on the simulated trunk in the test's virtual time
    for args in (
        ("team1", "--role", "team", "--team", "1팀"),
        ("team2", "--role", "team", "--team", "2팀"),
        ("officer", "--role", "officer"),
        ("admin", "--role", "admin"),
    ):
        cli.runner.invoke(
            cli.app,
            ["--config", str(cli.root), "users", "add", args[0], *args[1:], "--password-stdin"],
            input=PASSWORD + "\n",
        )


def officers_call_back_note(cli, name: str) -> VisitTask:
    """The person pressed 2 as well: the officer called back and wrote what was said (for officers only)."""
    with cli.db().transaction() as session:
        visit = session.exec(
            select(VisitTask)
            .join(Person, Person.id == VisitTask.person_id)
            .where(Person.name == name, VisitTask.kind == "visit")
        ).one()
        callback = VisitTask(
            person_id=visit.person_id,
            run_id=visit.run_id,
            kind="callback",
            team=visit.team,
            created_at=cli.clock.now(),
            created_on=cli.clock.now().astimezone(SEOUL).date(),
        )
        session.add(callback)
        session.flush()
        callback_id = callback.id
    db = cli.db()
    return record_outcome(
        db,
        callback_id,
        "called_referred",
        now=cli.clock.now(),
        tz=SEOUL,
        note=OFFICERS_NOTE,
        actor="web:officer",
        officer=True,
    )


def move_to_another_teams_dong(cli, tmp_path):
    """The office's next roster: 이영희 now lives in 부암동, 2팀's dong; everyone else as before."""
    rows = [
        person_row("<b>김순자</b>", "010-0123-0001", guardian="김보호", guardian_phone="010-0999-0001", risk="상"),
        person_row("이영희", "010-0123-0002", dong="부암동"),
        person_row("박부암", "010-0123-0003", dong="부암동"),
        person_row("최도움", "010-0123-0004"),
    ]
    return cli("recipients", "import", str(write_csv(tmp_path / "moved.csv", rows)))


def web_services(cli) -> Services:
    return Services.open(load_instance(cli.root, cli.environ), cli.clock)


@contextmanager
def served(app, lifespan: str = "off"):
    """The app under uvicorn on a free loopback port, stopped afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_app(cli, **kwargs):
    return create_web_app(web_services(cli), SECRET, **kwargs)
