"""One-tap check-in links (safecall/checkin.py), for an officer who sends one by hand."""

from __future__ import annotations

from datetime import timedelta

import typer

from safecall.cli.context import group, state
from safecall.errors import NotFoundError
from safecall.i18n import N_

checkin_app = group("One-tap check-in links (잘 지내요 / 도움이 필요해요).")


@checkin_app.command("link")
def checkin_link(ctx: typer.Context, person: str = typer.Argument(..., help="Id or exact name.")):
    """Print a new one-tap link for the person's open run: single use, valid for [checkin] link_hours."""
    from safecall import checkin  # the store and the lifecycle: loaded by the command, not by --help
    from safecall.people import find_person

    app = state(ctx)
    services = app.services()
    settings = services.instance.settings
    secret = settings.web.secret_key.resolve(services.instance.environ)  # a missing secret is a ConfigError naming it
    with services.db.session() as session:
        person_id = find_person(session, person).id
    assert person_id is not None, "a stored person has their id"
    url = checkin.link_for_person(
        services.db,
        checkin.LinkSigner(secret),
        settings.web.base_url,
        person_id,
        now=services.now(),
        lifetime=timedelta(hours=settings.checkin.link_hours),
    )
    if url is None:
        raise NotFoundError(
            N_("person {id} is in no open run this week: there is nothing a link could answer"), id=person_id
        )
    typer.echo(url)
