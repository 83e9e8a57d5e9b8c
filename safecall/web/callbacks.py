"""The officers' list of call-backs: people who asked to be called, words of risk first."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from safecall.visits import CALLBACK_OUTCOMES
from safecall.web import data
from safecall.web.deps import MAX_ID, Officer, Svc, logged, render
from safecall.web.tasks import saved_message, waiting

router = APIRouter()


@router.get("/callbacks")
def callback_list(request: Request, services: Svc, user: Officer, saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None):
    today = services.today()
    open_items, closed_items = data.callbacks(services.db, since=today - timedelta(days=7))
    logged(services, user, "web.view", "callback list", f"open={len(open_items)}")
    return render(request, "callbacks.html", open_items=open_items, closed_items=closed_items, outcomes=CALLBACK_OUTCOMES,
                  clocks=waiting(services), message=saved_message(services, user, saved, "callback"))
