"""One unit of work, opened by the caller (issue 26, item 4): one connection, one transaction, the repositories'
reads consistent with each other, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from safecall.store import AuditEvent, Person, StoreError, audit
from safecall.store.prepared import new_values

AT = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def a_person(db, name: str) -> int:
    with db.transaction() as session:
        count = len(list(session.exec(select(Person.id))))
        person = Person(
            person_key=f"key-{count}",
            name=name,
            phone=f"+8210123456{count:02d}",
            dong="역삼동",
            birth_date=date(1940, 1, 1),
            team="역삼1팀",
            created_at=AT,
            updated_at=AT,
        )
        session.add(person)
        session.flush()
        return person.id


def a_pause(db, person_id: int) -> None:
    with db.transaction() as session:
        audit(session, at=AT, action="person.pause", subject=f"person {person_id}", detail="입원")


def people(db) -> list[str]:
    with db.session() as session:
        return sorted(session.exec(select(Person.name)))


@pytest.mark.both_databases
def test_a_read_unit_sees_one_database_whatever_others_commit_meanwhile(cli, database_url):
    cli("recipients", "list")
    db = cli.db()
    first = a_person(db, "김순자")
    with db.unit(read_only=True) as unit:
        assert people(unit) == ["김순자"]
        second = a_person(db, "박영수")  # another connection commits while the page is being read
        a_pause(db, first)
        assert people(unit) == ["김순자"]  # the unit's second read: the same database as its first
        assert unit.members.changes_of(first) == []
        assert unit.tasks.notes_of([first, second], ["visit"]) == []
    assert people(db) == ["김순자", "박영수"]
    with db.unit(read_only=True) as unit:
        assert [event.detail for event in unit.members.changes_of(first)] == ["입원"]


@pytest.mark.both_databases
def test_a_write_in_a_read_unit_is_refused_and_the_connection_goes_back_writable(cli, database_url):
    cli("recipients", "list")
    db = cli.db()
    with pytest.raises((StoreError, sa.exc.InternalError)):  # SQLite: read-only database; PostgreSQL: transaction
        with db.unit(read_only=True) as unit:
            people(unit)
            a_person(unit, "김순자")
    for _ in range(3):  # the pool hands out the same connection again: it must take writes
        a_person(db, "박영수")
    assert people(db) == ["박영수"] * 3


@pytest.mark.both_databases
def test_a_write_unit_commits_whole_at_its_end_or_not_at_all(cli, database_url):
    cli("recipients", "list")
    db = cli.db()
    with pytest.raises(RuntimeError):
        with db.unit() as unit:
            a_person(unit, "김순자")
            a_person(unit, "박영수")
            raise RuntimeError("the request failed after its writes")
    assert people(db) == []
    with db.unit() as unit:
        a_person(unit, "김순자")
        assert people(unit) == ["김순자"]  # the unit reads its own writes
        a_person(unit, "박영수")
    assert people(db) == ["김순자", "박영수"]


@pytest.mark.both_databases
def test_a_block_that_fails_inside_a_unit_is_undone_alone(cli, database_url):
    """A page that shows an error after a refused save still commits the rest of its unit, not the refused part."""
    cli("recipients", "list")
    db = cli.db()
    audit = AuditEvent.__table__
    add = sa.insert(audit).values(detail="", **new_values("at", "actor", "action", "subject"))
    row = {"new_at": AT, "new_actor": "tester", "new_action": "a", "new_subject": "s"}
    with db.unit() as unit:
        a_person(unit, "김순자")
        with pytest.raises(ValueError):
            with unit.transaction() as session:
                session.add(
                    Person(
                        person_key="k",
                        name="박영수",
                        phone="+821099998888",
                        dong="역삼동",
                        team="역삼1팀",
                        birth_date=date(1940, 1, 1),
                        created_at=AT,
                        updated_at=AT,
                    )
                )
                session.flush()
                raise ValueError("refused")
        with pytest.raises(RuntimeError):
            with unit.statements() as connection:  # prepared statements are part of the unit too
                unit.prepared(add).execute(connection, row)
                raise RuntimeError("a crash mid-block")
        with unit.statements() as connection:
            unit.prepared(add).execute(connection, {**row, "new_subject": "kept"})
    assert people(db) == ["김순자"]
    with db.session() as session:
        assert list(session.exec(select(AuditEvent.subject).where(AuditEvent.actor == "tester"))) == ["kept"]


def test_a_unit_nobody_reads_opens_no_connection_and_a_unit_inside_a_unit_is_the_same(cli):
    cli("recipients", "list")
    db = cli.db()
    checkouts = []
    sa.event.listen(db.engine, "checkout", lambda *args: checkouts.append(1))
    with db.unit() as unit:
        with unit.unit(read_only=True) as inner:
            assert inner is unit
    assert checkouts == []
    with db.unit(read_only=True) as unit:
        people(unit)
        unit.runs.open_ids()
        unit.tasks.notes_of([1], ["visit"])
        with unit.reading() as connection:
            connection.execute(sa.select(1))
    assert len(checkouts) == 1  # four reads, one connection
