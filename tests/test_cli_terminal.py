"""Terminal output (issue 19): text from rosters is data in every list command, on a real terminal too;
nothing is cut at 80 columns; --format csv|json; no traceback reaches a user."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import person_row, scripted_trunks, write_csv
from sqlmodel import select as query

from safecall.store import Person
from safecall.terminal import plain

# Names as they may sit in the database (older imports, webhooks): Rich markup, a hyperlink, an OSC title change,
# a screen clear, a direction override. Each must show literally, and none may reach the terminal as a control.
HOSTILE = {
    "+821001230001": "이름[/]",
    "+821001230002": "[link=http://x]x[/link]",
    "+821001230003": "악\x1b]0;title\x07성",
    "+821001230004": "\x1b[2J[bold red]지움[/]",
    "+821001230005": "\u202e역방향\x00널",
}
HOSTILE_ADDRESS = "[/]주소\x1b[31m빨강"
TODAY = "2026-11-24"


def hostile_week(cli, tmp_path) -> None:
    """A week whose five non-responders (visit tasks) carry hostile names and one a hostile address."""
    cli.set_trunks(scripted_trunks({number: ["no_answer"] for number in HOSTILE}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row(f"대상{i}", "010-0123-000" + number[-1]) for i, number in enumerate(HOSTILE, start=1)],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    db = cli.db()
    with db.transaction() as session:
        for person in session.exec(query(Person)):
            person.name = HOSTILE[person.phone]
            if person.phone.endswith("1"):
                person.address = HOSTILE_ADDRESS
            session.add(person)
    db.dispose()


LIST_COMMANDS = [
    ["recipients", "list"],
    ["recipients", "list", "--format", "csv"],
    ["recipients", "list", "--format", "json"],
    ["visits", "list", "--date", TODAY],
    ["visits", "list", "--date", TODAY, "--format", "json"],
    ["campaign", "list"],
    ["campaign", "status"],
    ["report", "weekly"],
]


def shown(name: str) -> str:
    return plain(name)


def assert_literal_and_harmless(output: str, command: list[str]) -> None:
    where = " ".join(command)
    assert "\x07" not in output and "\x00" not in output and "\u202e" not in output, where
    assert "\x1b" not in output, (where, output)
    assert "Traceback" not in output, where


@pytest.mark.parametrize("lang", ["ko_KR.UTF-8", "en_US.UTF-8"])
def test_hostile_names_print_literally_in_every_list_command(cli, tmp_path, lang):
    hostile_week(cli, tmp_path)
    cli.use_locale(lang)
    for command in LIST_COMMANDS:
        output = cli(*command).output
        assert_literal_and_harmless(output, command)
        if command[:2] in (["recipients", "list"], ["visits", "list"]):
            for name in HOSTILE.values():
                expected = shown(name) if "json" not in command else json.dumps(shown(name), ensure_ascii=False)[1:-1]
                if "json" in command:  # JSON carries the stored text, its controls escaped (\u001b)
                    expected = json.dumps(name, ensure_ascii=False)[1:-1].replace("\u202e", "\\u202e")
                assert expected in output, (command, name, output)
    show = cli("recipients", "show", "1").output
    assert_literal_and_harmless(show, ["recipients", "show"])
    assert shown(HOSTILE_ADDRESS) in show and "이름[/]" in show


def test_json_lists_keep_the_stored_text_exactly(cli, tmp_path):
    hostile_week(cli, tmp_path)
    people = json.loads(cli("recipients", "list", "--format", "json").output)
    assert sorted(p["name"] for p in people) == sorted(HOSTILE.values())
    assert {p["risk"] for p in people} == {2} and {p["status"] for p in people} == {"active"}
    visits = json.loads(cli("visits", "list", "--date", TODAY, "--format", "json").output)
    assert sorted(row["name"] for rows in visits.values() for row in rows) == sorted(HOSTILE.values())


def test_closing_a_person_with_a_markup_name_commits_once_and_prints(cli, tmp_path):
    hostile_week(cli, tmp_path)
    result = cli("recipients", "close", "1", "--reason", "이사")
    assert result.exit_code == 0 and "이름[/]" in result.output and "Traceback" not in result.output
    db = cli.db()
    with db.session() as session:
        person = session.get(Person, 1)
        assert (person.status, person.closed_reason) == ("closed", "moved")
    db.dispose()


def test_csv_on_stdout_is_plain_and_safe_for_excel(cli, tmp_path):
    hostile_week(cli, tmp_path)
    cli("recipients", "pause", "2", "--until", "2026-12-31")
    rows = list(csv.reader(io.StringIO(cli("recipients", "list", "--format", "csv").output)))
    assert rows[0] == ["id", "name", "phone", "dong", "team", "risk", "consent", "status"]
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id["1"][1] == "이름[/]" and by_id["1"][2] == "010-0123-0001"
    assert by_id["2"][7] == "paused until 2026-12-31" and by_id["2"][5] == "medium"
    cli.use_locale("ko_KR.UTF-8")
    korean = list(csv.reader(io.StringIO(cli("recipients", "list", "--format", "csv").output)))
    assert korean[0][:3] == ["번호", "성명", "전화번호"]
    assert {row[0]: row for row in korean[1:]}["2"][5:] == ["중", "2025-01-10", "일시 중지 (2026-12-31까지)"]


def test_nothing_is_cut_at_80_columns(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    long_name = "김" * 30
    long_address = "서울특별시 종로구 사직로 " + "아주긴주소" * 10
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [person_row(long_name, "010-0123-0001", guardian="보호자", guardian_phone="010-0999-0001")],
            )
        ),
    )
    db = cli.db()
    with db.transaction() as session:
        person = session.exec(query(Person)).one()
        person.address = long_address
        session.add(person)
    db.dispose()
    cli("campaign", "launch", "weekly-safe-call")
    for lang in ("ko_KR.UTF-8", "en_US.UTF-8"):
        cli.use_locale(lang)
        for command in (["recipients", "list"], ["visits", "list", "--date", TODAY], ["recipients", "show", "1"]):
            output = cli(*command).output
            assert "…" not in output, (command, output)
            assert max(len(line) for line in output.splitlines()) <= 80 or command[1] == "show"
            if command[1] == "show":
                assert long_name in output and long_address in output
                continue
            if output.startswith("┏"):  # a table: the name folded over lines, but all there; a phone never folds
                assert long_name in column(output, 1) and "010-0123-0001" in column(output, 2), output
            else:  # too many columns to read at 80: one block per row, a value per line
                assert long_name in output and "010-0123-0001" in output, output
            if command[0] == "visits":
                assert output.startswith("1팀") and not output.startswith("┏")
                assert long_address in output and "보호자 010-0999-0001" in output, output


def column(output: str, index: int) -> str:
    """A table column's text, its folded lines joined."""
    return "".join(line.split("│")[index + 1].strip() for line in output.splitlines() if line.startswith("│"))


def test_list_commands_take_csv_and_json(cli, tmp_path):
    hostile_week(cli, tmp_path)
    runs = json.loads(cli("campaign", "list", "--format", "json").output)
    assert runs["campaigns"] == ["weekly-safe-call"] and runs["runs"][0]["status"] == "closed"
    status = json.loads(cli("campaign", "status", "--format", "json").output)
    assert (status["people"], status["final_non_responders"], status["attempts_by_result"]) == (5, 5, {"no_answer": 20})
    assert list(csv.reader(io.StringIO(cli("campaign", "list", "--format", "csv").output)))[0] == [
        "run",
        "campaign",
        "week",
        "status",
        "first call",
    ]
    report = json.loads(cli("report", "weekly", "--format", "json").output)
    assert report[0]["unreachable"] == 5 and report[0]["outcomes"] == {"pending": 5}
    deliveries = json.loads(cli("visits", "deliveries", "--date", TODAY, "--format", "json").output)
    assert deliveries == []
    refused = cli("recipients", "list", "--format", "yaml", ok=False)
    assert refused.exit_code == 1 and "unknown format 'yaml'" in refused.output


# ---- a real terminal ------------------------------------------------------------------------------------------------
# Rich colours a terminal with SGR sequences (ESC [ ... m); anything else starting with ESC came from the data.
RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")


# One process runs every command (one app, as `safecall` builds it), so the terminal is real and the test is quick.
DRIVER = """
import json, sys
from safecall.cli import create_app
app = create_app()
for index, command in enumerate(json.loads(sys.argv[1])):
    print(f"=== {index} ===", flush=True)
    try:
        app(command, prog_name="safecall")
    except SystemExit as exc:
        if exc.code:
            raise
"""


def run_on_terminal(commands: list[list[str]], env: dict, columns: int = 200, timeout: float = 120) -> list[str]:
    """The commands in a subprocess whose stdout and stderr are a pseudo-terminal; what each one wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        assert process.wait(timeout=10) == 0, b"".join(chunks).decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    output = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return re.split(r"=== \d+ ===\n", output)[1:]


def test_hostile_names_on_a_real_pseudo_terminal(cli, tmp_path):
    hostile_week(cli, tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update({"LANG": "ko_KR.UTF-8", "TERM": "xterm-256color", "FORCE_COLOR": "1", "SAFECALL_CONFIG": str(cli.root)})
    commands = LIST_COMMANDS + [["recipients", "show", "1"]]
    outputs = run_on_terminal(commands, env)
    assert len(outputs) == len(commands)
    for command, output in zip(commands, outputs, strict=True):
        assert RICH_STYLE.search(output) or "json" in command or "csv" in command, (
            f"Rich did not see a terminal: {command}"
        )
        data = RICH_STYLE.sub("", output)
        assert "\x1b" not in data and "\x07" not in data and "\x00" not in data, (command, output)
        assert "Traceback" not in data and "오류" not in data
        if command[:2] in (["recipients", "list"], ["visits", "list"]) and "json" not in command:
            for name in HOSTILE.values():
                assert shown(name) in data, (command, name, data)
    narrow = run_on_terminal([["recipients", "list"], ["visits", "list", "--date", TODAY]], env, columns=80)
    for output in narrow:
        data = RICH_STYLE.sub("", output)
        assert "…" not in data and "\x1b" not in data and max(map(len, data.splitlines())) <= 80, data
        for number in HOSTILE:
            assert "010-0123-000" + number[-1] in data, data


def test_an_error_naming_a_markup_name_prints_it_literally(cli):
    for lang in ("en_US.UTF-8", "ko_KR.UTF-8"):
        cli.use_locale(lang)
        result = cli("recipients", "show", "이름[/][bold]\x1b]0;x\x07", ok=False)
        assert result.exit_code == 1 and "Traceback" not in result.output and "\x1b" not in result.output
        assert "'이름[/][bold]" in result.output
