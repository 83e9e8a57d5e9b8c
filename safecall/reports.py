"""Weekly reports per campaign week and dong, and a chart of the rates over the weeks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlmodel import select

from safecall import sheets

from safecall.store import CampaignRun, Database, MemberState, Person, RunMember, VisitTask

COLUMNS = [("campaign", "캠페인"), ("week", "주"), ("dong", "행정동"), ("called", "대상"), ("ack_first", "1차 응답"),
           ("ack_retry", "재시도 후 응답"), ("help", "도움 요청"), ("unreachable", "최종 무응답"), ("visits", "방문 과제"),
           ("outcomes", "방문 결과")]


@dataclass
class ReportRow:
    campaign: str
    week: date
    dong: str
    called: int = 0
    ack_first: int = 0
    ack_retry: int = 0
    help: int = 0
    unreachable: int = 0
    visits: int = 0
    outcome_counts: dict = field(default_factory=lambda: defaultdict(int))

    @property
    def outcomes(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.outcome_counts.items()))

    def cells(self) -> list:
        return [getattr(self, key) if key != "week" else self.week.isoformat() for key, _ in COLUMNS]


def weekly_report(db: Database, *, start: date | None = None, end: date | None = None) -> list[ReportRow]:
    rows: dict[tuple, ReportRow] = {}
    with db.session() as session:
        query = select(RunMember, Person, CampaignRun).join(Person, Person.id == RunMember.person_id).join(
            CampaignRun, CampaignRun.id == RunMember.run_id)
        if start:
            query = query.where(CampaignRun.week_start >= start)
        if end:
            query = query.where(CampaignRun.week_start <= end)
        for member, person, run in session.exec(query):
            row = rows.setdefault((run.campaign, run.week_start, person.dong), ReportRow(run.campaign, run.week_start, person.dong))
            if member.state == MemberState.WITHDRAWN or member.attempts_made == 0:
                continue
            row.called += 1
            if member.state == MemberState.ACKNOWLEDGED:
                if member.attempts_made == 1:
                    row.ack_first += 1
                else:
                    row.ack_retry += 1
            elif member.state == MemberState.HELP_REQUESTED:
                row.help += 1
            elif member.state == MemberState.UNREACHABLE:
                row.unreachable += 1
        tasks = select(VisitTask, Person, CampaignRun).join(Person, Person.id == VisitTask.person_id).join(
            CampaignRun, CampaignRun.id == VisitTask.run_id).where(VisitTask.kind == "visit")
        for task, person, run in session.exec(tasks):
            row = rows.get((run.campaign, run.week_start, person.dong))
            if row is None:
                continue
            row.visits += 1
            row.outcome_counts[task.outcome or "pending"] += 1
    return sorted(rows.values(), key=lambda r: (r.campaign, r.week, r.dong))


def report_csv(rows: list[ReportRow]) -> bytes:
    return sheets.csv_bytes([title for _, title in COLUMNS], (row.cells() for row in rows))


def report_xlsx(rows: list[ReportRow], path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "weekly"
    sheets.append_rows(sheet, [title for _, title in COLUMNS], (row.cells() for row in rows))
    workbook.save(path)


def weekly_rates(rows: list[ReportRow]) -> list[tuple[date, float, float]]:
    """(week, acknowledged share, final non-response share) over all dongs and campaigns."""
    totals: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        total = totals[row.week]
        total[0] += row.called
        total[1] += row.ack_first + row.ack_retry
        total[2] += row.unreachable
    return [(week, ack / called, unreached / called) for week, (called, ack, unreached) in sorted(totals.items()) if called]


def draw_chart(rows: list[ReportRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = weekly_rates(rows)
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    weeks = [week.isoformat() for week, _, _ in rates]
    axes.plot(weeks, [100 * ack for _, ack, _ in rates], marker="o", label="acknowledged %")
    axes.plot(weeks, [100 * unreached for _, _, unreached in rates], marker="s", label="final non-response %")
    axes.set_ylim(0, 100)
    axes.set_xlabel("campaign week")
    axes.set_ylabel("% of people called")
    axes.set_title("SafeCall weekly rates")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
