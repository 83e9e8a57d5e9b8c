"""`campaign status` read with SQLAlchemy Core (safecall/corereads.py): the same counts as the ORM's, tables that match
the models, and the usual way (create, refuse, ask to upgrade) whenever the database is not at the newest revision."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
from conftest import person_row, scripted_trunks, write_csv
from sqlalchemy.dialects import sqlite as sqlite_dialect

from safecall.corereads import ATTEMPT, MEMBER, RUN, status_if_current
from safecall.runs import run_status
from safecall.settings import load_instance
from safecall.store import Attempt, CampaignRun, RunMember

SQLITE = sqlite_dialect.dialect()
SCRIPTS = {  # an answer on the first try, one after retries, a help request, a non-responder, a wrong first number
    "+821001240001": ["ack"],
    "+821001240002": ["no_answer", "ack"],
    "+821001240003": ["help"],
    "+821001240004": ["no_answer"],
    "+821001240005": ["invalid"],
    "+827001240005": ["ack"],
}


def test_the_core_tables_name_columns_the_models_have():
    for light, model in ((RUN, CampaignRun), (MEMBER, RunMember), (ATTEMPT, Attempt)):
        table = model.__table__
        assert light.name == table.name
        for column in light.columns:
            assert column.name in table.c, f"{table.name}.{column.name}"
            # the same SQL type (sqlmodel's AutoString is a VARCHAR, as String is)
            assert column.type.compile(SQLITE) == table.c[column.name].type.compile(SQLITE), (
                f"{table.name}.{column.name}"
            )


@pytest.mark.both_databases
def test_the_status_read_with_core_is_the_orms(cli, tmp_path):
    cli.set_trunks(scripted_trunks(SCRIPTS))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("가", "010-0124-0001"),
                    person_row("나", "010-0124-0002"),
                    person_row("다", "010-0124-0003"),
                    person_row("라", "010-0124-0004"),
                    person_row("마", "010-0124-0005", phone2="070-0124-0005"),
                ],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    instance = load_instance(cli.root, cli.environ)
    quick = status_if_current(instance.database_url(), 30, None)
    db = cli.db()
    try:
        orm = run_status(db, 1)
    finally:
        db.dispose()
    assert quick is not None
    fields = [field.name for field in dataclasses.fields(quick) if field.name != "run"]
    assert {name: getattr(quick, name) for name in fields} == {name: getattr(orm, name) for name in fields}
    assert (
        quick.people,
        quick.acknowledged_first_try,
        quick.acknowledged_after_retries,
        quick.help_requests,
        quick.final_non_responders,
    ) == (5, 1, 2, 1, 1)  # 마 answered on the second number: after a retry
    assert quick.attempts_by_disposition["invalid_number"] == 1 and quick.attempts_by_disposition["no_answer"] >= 2
    assert (quick.run.id, quick.run.campaign, str(quick.run.week_start), quick.run.status) == (
        orm.run.id,
        orm.run.campaign,
        str(orm.run.week_start),
        orm.run.status,
    )
    shown = json.loads(cli("campaign", "status", "--format", "json").output)
    assert shown["week_start"] == "2026-11-23" and shown["people"] == 5 and shown["status"] == orm.run.status


def test_a_database_not_at_the_newest_revision_is_opened_the_usual_way(cli, tmp_path):
    url = load_instance(cli.root, cli.environ).database_url()
    database = cli.root / "data" / "safecall.db"
    assert not database.exists()
    nothing = cli("campaign", "status", ok=False)  # no database yet: created, as by every command, and it has no run
    assert nothing.exit_code == 1 and "no runs yet; launch one with 'safecall campaign launch NAME'" in nothing.output
    assert database.exists() and status_if_current(url, 30, None) is None
    cli.set_trunks(scripted_trunks({"+821001240001": ["ack"]}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("가", "010-0124-0001")])))
    cli("campaign", "launch", "weekly-safe-call")
    assert status_if_current(url, 30, None).people == 1 and status_if_current(url, 30, 7) is None
    assert "no run 7" in cli("campaign", "status", "7", ok=False).output  # the usual way's words for a run not there
    with sqlite3.connect(database) as connection:  # one revision behind: refused with the way to upgrade
        connection.execute("UPDATE alembic_version SET version_num = '0007'")
    assert status_if_current(url, 30, None) is None
    behind = cli("campaign", "status", ok=False)
    assert behind.exit_code == 1 and "safecall db upgrade" in behind.output
