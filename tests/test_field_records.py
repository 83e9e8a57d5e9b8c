"""Field records without accidents, and spacing that means spacing (issue 25, parts 3 and 4), over HTTP and the CLI.

The same in a real browser: tests/test_web_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
from conftest import SEOUL, person_row, write_csv
from sqlmodel import select
from test_web_http import client, csrf_of, log_in
from web_fixtures import OFFICERS_NOTE, move_to_another_teams_dong, office_with_a_week, officers_call_back_note

from safecall.store import AuditEvent, Person, VisitTask
from safecall.visits import record_outcome

TUESDAY = datetime(2026, 11, 24, 9, 30, tzinfo=SEOUL)
TODAY = TUESDAY.date()


@pytest.fixture
def office(cli, tmp_path):
    office_with_a_week(cli, tmp_path)
    cli.clock.set(TUESDAY)
    return cli


def tasks_by_name(cli) -> dict[str, VisitTask]:
    with cli.db().session() as session:
        return {
            person.name: task
            for task, person in session.exec(
                select(VisitTask, Person)
                .join(Person, Person.id == VisitTask.person_id)
                .where(VisitTask.kind == "visit")
            )
        }


def the_task(cli, task_id: int) -> VisitTask:
    with cli.db().session() as session:
        return session.get(VisitTask, task_id)


# ---- no default outcome, and a confirmation after saving ----------------------------------------------------------
def test_an_untouched_form_opens_without_an_outcome_and_the_server_refuses_it(office):
    http = client(office)
    log_in(http, "team1")
    task = tasks_by_name(office)["이영희"]
    page = http.get(f"/task/{task.id}")
    assert '<option value="" disabled selected>결과를 선택하세요</option>' in page.text
    # What a browser sends for an untouched form, and a post with no outcome at all: refused, in Korean, nothing saved.
    for form in ({"outcome": "", "note": "", "until": ""}, {"note": "문 앞에서 돌아감"}):
        refused = http.post(f"/task/{task.id}/outcome", data={**form, "csrf": csrf_of(page)})
        assert refused.status_code == 400
        assert (
            "저장하지 않았습니다" in refused.text
            and "결과: 선택하지 않았습니다. 방문이나 통화 결과를 선택하세요" in refused.text
        )
    stored = the_task(office, task.id)
    assert stored.status == "open" and stored.outcome is None and stored.note is None
    officer = client(office)
    log_in(officer, "officer")
    callbacks = officer.get("/callbacks")
    assert '<option value="" disabled selected>결과를 선택하세요</option>' in callbacks.text  # the call-back form too
    with office.db().session() as session:
        assert not session.exec(select(AuditEvent).where(AuditEvent.action == "visit.record")).all()


def test_the_list_confirms_what_was_saved_and_what_happens_next(office):
    http = client(office)
    log_in(http, "team1")
    tasks = tasks_by_name(office)
    page = http.get(f"/task/{tasks['<b>김순자</b>'].id}")
    saved = http.post(f"/task/{tasks['<b>김순자</b>'].id}/outcome", data={"outcome": "not_home", "csrf": csrf_of(page)})
    assert saved.headers["location"] == f"/team/1%ED%8C%80?saved={tasks['<b>김순자</b>'].id}"
    shown = http.get(saved.headers["location"]).text
    # The name is data: escaped in the message too.
    assert (
        '<p class="message" id="message" role="status">&lt;b&gt;김순자&lt;/b&gt;: '
        "부재(재방문) 저장됨 — 내일 명단에 다시 올라갑니다</p>" in shown
    )
    saved = http.post(
        f"/task/{tasks['이영희'].id}/outcome",
        data={"outcome": "hospitalised", "until": "2026-12-20", "csrf": csrf_of(page)},
    )
    assert "이영희: 입원(날짜까지) 저장됨 — 2026-12-20까지 안심콜을 쉽니다" in http.get(saved.headers["location"]).text
    # Another team's task number in the address shows nothing of it.
    other = tasks["박부암"]
    record_outcome(office.db(), other.id, "safe", now=office.clock.now(), tz=SEOUL, actor="web:team2")
    assert 'id="message"' not in http.get(f"/team/1팀?saved={other.id}").text


# ---- bounds: the note, and how long a hospital stay pauses the calls -------------------------------------------------
def test_the_server_bounds_notes_and_hospital_stays_and_an_officer_may_go_longer(office):
    team, officer = client(office), client(office)
    log_in(team, "team1"), log_in(officer, "officer")
    tasks = tasks_by_name(office)
    page = team.get(f"/task/{tasks['이영희'].id}")
    assert (
        f'min="{TODAY}" max="{TODAY + timedelta(days=180)}"' in page.text
    )  # the browser's bounds, checked again below

    def post(http, name, **form):
        return http.post(f"/task/{tasks[name].id}/outcome", data={**form, "csrf": csrf_of(http.get("/login"))})

    too_long = post(team, "이영희", outcome="safe", note="가" * 2001)
    assert too_long.status_code == 400 and "메모: 2,001자입니다. 2,000자까지 쓸 수 있습니다" in too_long.text
    far = TODAY + timedelta(days=181)
    refused = post(team, "이영희", outcome="hospitalised", until=far.isoformat())
    assert refused.status_code == 400
    assert (
        f"입원 종료일: {far}은 181일 뒤입니다. 180일 뒤({TODAY + timedelta(days=180)})까지만 기록할 수 있습니다. "
        "더 긴 입원은 복지 담당자가 기록합니다: 복지 담당자에게 기록을 부탁하세요"
    ) in refused.text
    past = post(team, "이영희", outcome="hospitalised", until="2026-11-23")
    assert past.status_code == 400 and "입원 종료일: 2026-11-23은 지난 날짜입니다" in past.text
    assert "입원 종료일: 결과가 입원이 아닌데" in post(team, "이영희", outcome="safe", until="2026-12-01").text
    assert the_task(office, tasks["이영희"].id).outcome is None  # nothing of it was saved

    assert post(team, "이영희", outcome="not_home", note="가" * 2000).status_code == 303  # at the bound: saved
    assert (
        post(team, "<b>김순자</b>", outcome="hospitalised", until=(TODAY + timedelta(days=180)).isoformat()).status_code
        == 303
    )
    # The officer may pause a long stay, on a visit task of any team.
    assert (
        f'min="{TODAY}" max="{TODAY + timedelta(days=365)}">' in officer.get(f"/task/{tasks['박부암'].id}").text
    )  # a year at most
    assert (
        post(officer, "박부암", outcome="hospitalised", until=(TODAY + timedelta(days=366)).isoformat()).status_code
        == 400
    )
    assert post(officer, "박부암", outcome="hospitalised", until="2027-10-31").status_code == 303
    with office.db().session() as session:
        until = {p.name: p.paused_until for p in session.exec(select(Person))}
        details = [e.detail for e in session.exec(select(AuditEvent).where(AuditEvent.action == "visit.record"))]
    assert until["박부암"] == date(2027, 10, 31) and until["<b>김순자</b>"] == TODAY + timedelta(days=180)
    assert "outcome=hospitalised until=2027-10-31" in details


def test_visits_record_in_the_cli_has_the_same_bounds(office):
    tasks = tasks_by_name(office)
    task = str(tasks["이영희"].id)
    long_note = office("visits", "record", task, "--outcome", "safe", "--note", "x" * 2001, ok=False)
    assert long_note.exit_code == 1
    assert "nothing was saved" in long_note.output and "note: 2,001 characters, at most 2,000" in long_note.output
    far = office("visits", "record", task, "--outcome", "hospitalised", "--until", "2027-06-01", ok=False)
    assert far.exit_code == 1
    assert (
        "hospitalised until: 2027-06-01 is 189 days ahead, at most 180 (2027-05-23); a longer stay is for a welfare "
        "officer: if the welfare officer decided it, add --long-stay"
    ) in " ".join(far.output.split())
    past = office("visits", "record", task, "--outcome", "hospitalised", "--until", "2026-11-01", ok=False)
    assert "hospitalised until: 2026-11-01 is in the past" in past.output
    assert the_task(office, int(task)).outcome is None
    office.use_locale("ko_KR.UTF-8")
    korean = office("visits", "record", task, "--outcome", "입원", "--until", "2027-06-01", ok=False)
    assert "복지 담당자가 정한 것이면 --long-stay를 붙이세요" in korean.output
    office("visits", "record", task, "--outcome", "입원", "--until", "2027-06-01", "--long-stay")
    with office.db().session() as session:
        assert session.get(Person, tasks["이영희"].person_id).paused_until == date(2027, 6, 1)


# ---- an officer's call-back notes stay officers' ---------------------------------------------------------------------
def test_a_team_sees_visit_notes_only_and_an_officer_sees_the_call_back_note(office):
    officers_call_back_note(office, "<b>김순자</b>")
    visit = tasks_by_name(office)["<b>김순자</b>"]
    team, officer = client(office), client(office)
    log_in(team, "team1"), log_in(officer, "officer")
    for page in (team.get("/team/1팀"), team.get(f"/task/{visit.id}"), officer.get("/team/1팀")):
        assert page.status_code == 200 and "김순자" in page.text
        assert OFFICERS_NOTE not in page.text and "정신건강" not in page.text
    shown = officer.get(f"/task/{visit.id}").text
    assert "이전 회신: " in shown and OFFICERS_NOTE in shown


# ---- moving follows the person ---------------------------------------------------------------------------------------
def test_a_re_import_moves_the_open_task_to_the_new_dongs_team(office, tmp_path):
    task = tasks_by_name(office)["이영희"]
    assert task.team == "1팀"
    imported = move_to_another_teams_dong(office, tmp_path)
    assert "1 open task(s) moved with their person to the new dong's team." in imported.output
    moved = the_task(office, task.id)
    assert (moved.team, moved.moved_from, moved.status) == ("2팀", "1팀", "open")
    with office.db().session() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "task.move")).one()
    assert event.subject == f"task {task.id}" and event.detail == f"person={task.person_id} from=1팀 to=2팀"

    team1, team2 = client(office), client(office)
    log_in(team1, "team1"), log_in(team2, "team2")
    assert "이영희" not in team1.get("/team/1팀").text and team1.get(f"/task/{task.id}").status_code == 403
    page = team2.get("/team/2팀").text
    assert "이영희" in page and '<div class="moved">1팀에서 이관</div>' in page

    table = office("visits", "list", "--team", "2팀").output
    assert "이영희" in table and "1팀에서 이관" in table
    assert "이영희" not in office("visits", "list", "--team", "1팀").output
    listed = json.loads(office("visits", "list", "--format", "json").output)
    assert [row["moved_from"] for row in listed["2팀"] if row["name"] == "이영희"] == ["1팀에서 이관"]
    export = tmp_path / "lists.csv"
    office("visits", "list", "--format", "csv", "--output", str(export))
    rows = list(csv.DictReader(io.StringIO(export.read_text(encoding="utf-8-sig"))))
    assert {(row["성명"], row["담당팀"], row["이관"]) for row in rows if row["성명"] == "이영희"} == {
        ("이영희", "2팀", "1팀에서 이관")
    }

    # The same roster again: nothing more moves; a dry run that would move says so and changes nothing.
    assert "task(s) moved" not in move_to_another_teams_dong(office, tmp_path).output
    rows_back = tmp_path / "back.csv"
    write_csv(rows_back, [person_row("이영희", "010-0123-0002", dong="삼청동")])
    assert "1 open task(s) would move" in office("recipients", "import", str(rows_back), "--dry-run").output
    assert the_task(office, task.id).team == "2팀"


def test_a_closed_task_stays_with_the_team_that_visited(office, tmp_path):
    task = tasks_by_name(office)["이영희"]
    record_outcome(office.db(), task.id, "safe", now=office.clock.now(), tz=SEOUL, actor="web:team1")
    assert "task(s) moved" not in move_to_another_teams_dong(office, tmp_path).output
    assert the_task(office, task.id).team == "1팀"


# ---- spacing means spacing -------------------------------------------------------------------------------------------
def test_a_campaign_refuses_retry_spacing_under_30_minutes(cli):
    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["1h", "0m", "next_day"]')
    refused = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert refused.exit_code == 1
    assert (
        "weekly-safe-call.toml: key 'retry.spacing': '0m' (entry 2) is under 30 minutes; retries closer than that are "
        "not spaced (use e.g. 30m, 1h or next_day)"
    ) in " ".join(refused.output.split())
    assert (
        "key 'retry.spacing'" in cli("campaign", "launch", "weekly-safe-call", ok=False).output
    )  # nothing launches on it
    cli.use_locale("ko_KR.UTF-8")
    assert (
        "키 'retry.spacing': '0m'(2번째 값)은 30분보다 짧습니다"
        in cli("campaign", "validate", "weekly-safe-call", ok=False).output
    )
    cli.edit_campaign('"0m"', '"29m"')
    assert "'29m'" in cli("campaign", "validate", "weekly-safe-call", ok=False).output
    cli.edit_campaign('"29m"', '"30m"')
    cli("campaign", "validate", "weekly-safe-call")


def test_only_a_test_instance_may_retry_at_once(cli):
    from safecall.synthetic import allow_fast_retries

    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["0m"]')
    cli("campaign", "validate", "weekly-safe-call", ok=False)
    allow_fast_retries(cli.root / "config" / "safecall.toml")
    allow_fast_retries(cli.root / "config" / "safecall.toml")  # once is enough; twice is not a broken file
    allowed = cli("campaign", "validate", "weekly-safe-call")
    assert "warning: [testing] fast_retries is on" in allowed.output


def test_no_hospital_stay_is_unbounded_even_for_an_officer():
    from datetime import date

    from safecall.errors import InputError
    from safecall.visits import OFFICER_HOSPITAL_MAX_DAYS, check_record

    today = date(2026, 11, 24)
    check_record(
        outcome="hospitalised", note=None, until=date(2027, 11, 24), today=today, officer=True
    )  # a year: allowed
    for until in (date(2027, 11, 25), date(9999, 12, 31)):
        try:
            check_record(outcome="hospitalised", note=None, until=until, today=today, officer=True)
        except InputError as exc:
            assert "hospitalised until" in str([str(p) for p in exc.problems])
        else:
            raise AssertionError(f"{until}: an officer paused someone beyond {OFFICER_HOSPITAL_MAX_DAYS} days")
