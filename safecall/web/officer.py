"""The officers' other pages: the teams, the open runs' progress, the weekly report and one person's history."""

from __future__ import annotations

import io

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from safecall.drift import drift_flags
from safecall.reports import draw_chart, weekly_report
from safecall.web import data
from safecall.web.deps import Officer, RowId, Svc, Teams, logged, render

router = APIRouter()


@router.get("/teams")
def team_index(request: Request, teams: Teams, user: Officer):
    return render(request, "teams.html", teams=teams)


@router.get("/progress")
def progress(request: Request, services: Svc, user: Officer):
    return render(request, "progress.html", runs=data.open_runs(services.db))


@router.get("/progress/counts")
def progress_counts(request: Request, services: Svc, user: Officer):
    return render(request, "progress_counts.html", runs=data.open_runs(services.db), now=services.now())


@router.get("/report")
def report(request: Request, services: Svc, user: Officer):
    return render(request, "report.html", rows=weekly_report(services.db), drift=drift_flags(services.db))


@router.get("/report/chart.png")
def report_chart(services: Svc, user: Officer):
    image = io.BytesIO()
    draw_chart(weekly_report(services.db), image)
    return Response(image.getvalue(), media_type="image/png")


@router.get("/person/{person_id}")
def person_page(request: Request, services: Svc, user: Officer, person_id: RowId):
    history = data.person_history(services.db, person_id)
    if history is None:
        raise HTTPException(404, "그런 사람이 없습니다.")
    logged(services, user, "web.view", f"person {person_id}", "history")
    return render(request, "person.html", h=history, drift=next(iter(drift_flags(services.db, [person_id])), None))
