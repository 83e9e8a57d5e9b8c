"""Drills (issue 19): a week rehearsed in virtual time on a throwaway copy of the data, never on a real run."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import Cli, person_row, scripted_trunks, write_csv
from sqlmodel import select

from safecall.store import Attempt, CampaignRun

SCRIPTS = {"+821001230001": ["ack"], "+821001230002": ["no_answer"], "+821001230003": ["help"]}


def set_up(cli: Cli, tmp_path: Path) -> None:
    cli.set_trunks(scripted_trunks(SCRIPTS).replace("seed = 1", 'seed = 1\nplaced_log = "placed.jsonl"'))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("응답", "010-0123-0001"),
                    person_row("무응답", "010-0123-0002"),
                    person_row("도움", "010-0123-0003"),
                ],
            )
        ),
    )


def snapshot(cli: Cli) -> dict[str, list[tuple]]:
    """Every row of every table of the real database, read without changing it."""
    connection = sqlite3.connect(f"file:{cli.root / 'data' / 'safecall.db'}?mode=ro", uri=True)
    try:
        tables = [
            name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr) for table in tables}
    finally:
        connection.close()


def shown(output: str, label: str) -> int:
    """The count on the status table's line `label`."""
    return int(re.search(re.escape(label) + r"\s*│\s*(\d+)", output).group(1))


def files_of(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def runs_and_attempts(cli: Cli) -> tuple[list[CampaignRun], list[Attempt]]:
    db = cli.db()
    try:
        with db.session() as session:
            return list(session.exec(select(CampaignRun))), list(session.exec(select(Attempt)))
    finally:
        db.dispose()


def test_a_drill_changes_nothing_real_and_the_real_launch_then_calls(cli, tmp_path):
    set_up(cli, tmp_path)
    before, files_before = snapshot(cli), files_of(cli.root)
    assert before["person"] and before["campaignrun"] == []
    output = cli("drill", "weekly-safe-call", "--now", "2026-11-23T08:00+09:00").output
    assert "on a copy of this instance's data" in output and "The real database is not touched." in output
    assert (
        shown(output, "acknowledged on the first try") == 1 and shown(output, "final non-responders (home visit)") == 1
    )
    assert "The drill's copy was deleted." in output
    assert snapshot(cli) == before
    assert files_of(cli.root) == files_before  # no placed-call log, list or backup was written into the instance
    # The real week is still to come: the real launch creates the run and dials it.
    output = cli("campaign", "launch", "weekly-safe-call").output
    assert "Launched run 1 of weekly-safe-call for the week of 2026-11-23" in output
    [run], attempts = runs_and_attempts(cli)
    assert run.status == "closed" and len(attempts) == 1 + 4 + 1  # the non-responder is called four times
    assert len((cli.root / "placed.jsonl").read_text().splitlines()) == 6


def test_fast_is_a_drill_that_leaves_an_open_real_run_alone(cli, tmp_path):
    set_up(cli, tmp_path)
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    before = snapshot(cli)
    result = cli("campaign", "launch", "weekly-safe-call", "--fast")
    assert (
        "--fast runs a drill on a throwaway copy" in result.output and "no real run is created or used" in result.output
    )
    assert shown(result.output, "final non-responders (home visit)") == 1
    assert snapshot(cli) == before
    [run], attempts = runs_and_attempts(cli)
    assert run.status == "open" and attempts == []
    # The real run is then dialled as if no drill had happened.
    cli("campaign", "run")
    [run], attempts = runs_and_attempts(cli)
    assert run.status == "closed" and len(attempts) == 6


def test_a_kept_drill_is_resumed_from_its_folder(cli, tmp_path):
    set_up(cli, tmp_path)
    before = snapshot(cli)
    folder = tmp_path / "drill"
    output = cli("drill", "weekly-safe-call", "--dir", str(folder)).output
    assert f"The drill's copy is kept in {folder}." in output
    assert len((folder / "placed.jsonl").read_text().splitlines()) == 6
    # Again: the same run in the kept copy, already closed; nothing is called twice and the real data is untouched.
    output = cli("drill", "weekly-safe-call", "--dir", str(folder)).output
    assert "(closed)" in output and len((folder / "placed.jsonl").read_text().splitlines()) == 6
    assert snapshot(cli) == before


def test_fast_and_drills_on_a_real_trunk_are_refused_before_anything_is_created(cli, tmp_path):
    set_up(cli, tmp_path)
    cli.set_trunks(
        'default = "cloud"\n[trunks.cloud]\ntype = "twilio"\naccount_sid = "AC00000000000000000000000000000000"\n'
        'auth_token = { env = "TEST_TWILIO_TOKEN" }\nfrom_number = "+8227000000"\npublic_base_url = "https://safecall.example.org/"\n'
        'listen = "127.0.0.1:8088"\n'
    )
    before, files_before = snapshot(cli), files_of(cli.root)
    for command in (["campaign", "launch", "weekly-safe-call", "--fast"], ["drill", "weekly-safe-call"]):
        result = cli(*command, ok=False)
        assert result.exit_code == 1
        assert "a drill dials through a simulated trunk only, and trunk 'cloud' places real calls" in result.output
    assert snapshot(cli) == before and files_of(cli.root) == files_before
    # A simulated trunk beside the real one can carry the drill.
    cli.set_trunks(
        (cli.root / "config" / "trunks.toml").read_text(encoding="utf-8")
        + scripted_trunks(SCRIPTS).replace('default = "simulated"\n', "").replace("trunks.simulated", "trunks.practice")
    )
    output = cli("drill", "weekly-safe-call", "--trunk", "practice").output
    assert shown(output, "acknowledged on the first try") == 1 and shown(output, "help requests (pressed 2)") == 1
    assert snapshot(cli) == before


def test_fast_on_a_real_run_is_refused(cli, tmp_path):
    set_up(cli, tmp_path)
    cli("campaign", "launch", "weekly-safe-call", "--no-dial")
    before = snapshot(cli)
    for command in (["campaign", "run", "--fast"], ["signals", "launch", "weekly-safe-call", "--fast"]):
        result = cli(*command, ok=False)
        assert (
            result.exit_code == 1 and "rehearse on a copy of the data with 'safecall drill CAMPAIGN'" in result.output
        )
    assert snapshot(cli) == before


def test_a_drill_on_postgresql_is_refused_without_showing_the_password(cli, tmp_path):
    other = Cli(
        cli.root, cli.clock, {"SAFECALL_DATABASE_URL": "postgresql+psycopg://safecall:s3cret@127.0.0.1:1/safecall"}
    )
    result = other("drill", "weekly-safe-call", ok=False)
    assert result.exit_code == 1 and "a drill copies the instance's SQLite database" in result.output
    assert "s3cret" not in result.output
