"""Weekly reports per campaign week and dong, and a chart of the rates over the weeks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

from sqlmodel import col, select

from safecall import sheets
from safecall.domain import CHECKIN_DIGIT, TaskKind
from safecall.glossary import REPORT
from safecall.i18n import N_, korean
from safecall.store import Attempt, CampaignRun, Database, Disposition, MemberState, Person, RunMember, VisitTask

REPORT_SHEET = REPORT["sheet"]  # the sheet's name in the office's words
COLUMNS = [
    ("campaign", "캠페인"),
    ("week", "주"),
    ("dong", "행정동"),
    ("called", "대상"),
    ("ack_first", "1차 응답"),
    ("ack_retry", "재시도 후 응답"),
    ("ack_callback", "그중 회신 전화 응답"),
    ("ack_checkin", "그중 문자 링크 응답"),
    ("help", "도움 요청"),
    ("unreachable", "최종 무응답"),
    ("visits", "방문 과제"),
    ("outcomes", "방문 결과"),
]


@dataclass
class ReportRow:
    campaign: str
    week: date
    dong: str
    called: int = 0
    ack_first: int = 0
    ack_retry: int = 0
    ack_callback: int = 0  # of those acknowledged, by calling back: caller ID can be forged, so shown apart
    ack_checkin: int = 0  # of those acknowledged, by a one-tap link (safecall/checkin.py): no call, so shown apart
    help: int = 0
    unreachable: int = 0
    visits: int = 0
    outcome_counts: dict = field(default_factory=lambda: defaultdict(int))

    @property
    def outcomes(self) -> str:
        """In Korean, as the office reads it: '부재(재방문) 1, 안전 확인 2'."""
        words = korean()
        return ", ".join(f"{words.pgettext('outcome', k)} {v}" for k, v in sorted(self.outcome_counts.items()))

    def cells(self) -> list:
        return [getattr(self, key) if key != "week" else self.week.isoformat() for key, _ in COLUMNS]

    def record(self) -> dict:
        """For programs: English keys and the stored outcome keywords."""
        return {
            **{key: getattr(self, key) for key, _ in COLUMNS if key not in ("week", "outcomes")},
            "week": self.week.isoformat(),
            "outcomes": dict(sorted(self.outcome_counts.items())),
        }


def weekly_report(db: Database, *, start: date | None = None, end: date | None = None) -> list[ReportRow]:
    rows: dict[tuple, ReportRow] = {}
    with db.session() as session:
        query = (
            select(RunMember, Person, CampaignRun)
            .join(Person, col(Person.id) == RunMember.person_id)
            .join(CampaignRun, col(CampaignRun.id) == RunMember.run_id)
        )
        if start:
            query = query.where(CampaignRun.week_start >= start)
        if end:
            query = query.where(CampaignRun.week_start <= end)
        by_callback = set(
            session.exec(
                select(Attempt.member_id).where(
                    Attempt.inbound == True,  # noqa: E712 (an SQL expression, not a Python truth test)
                    Attempt.disposition == Disposition.ACKNOWLEDGED,
                )
            )
        )
        by_checkin = set(
            session.exec(
                select(Attempt.member_id).where(
                    Attempt.digit == CHECKIN_DIGIT, Attempt.disposition == Disposition.ACKNOWLEDGED
                )
            )
        )
        for member, person, run in session.exec(query):
            row = rows.setdefault(
                (run.campaign, run.week_start, person.dong), ReportRow(run.campaign, run.week_start, person.dong)
            )
            if member.state == MemberState.WITHDRAWN or member.attempts_made == 0:
                continue
            row.called += 1
            if member.state == MemberState.ACKNOWLEDGED:
                if member.attempts_made == 1:
                    row.ack_first += 1
                else:
                    row.ack_retry += 1
                row.ack_callback += member.id in by_callback
                row.ack_checkin += member.id in by_checkin
            elif member.state == MemberState.HELP_REQUESTED:
                row.help += 1
            elif member.state == MemberState.UNREACHABLE:
                row.unreachable += 1
        tasks = (
            select(VisitTask, Person, CampaignRun)
            .join(Person, col(Person.id) == VisitTask.person_id)
            .join(CampaignRun, col(CampaignRun.id) == VisitTask.run_id)
            .where(VisitTask.kind == TaskKind.VISIT)
        )
        for task, person, run in session.exec(tasks):
            week_row = rows.get((run.campaign, run.week_start, person.dong))
            if week_row is None:
                continue
            week_row.visits += 1
            week_row.outcome_counts[task.outcome or "pending"] += 1
    return sorted(rows.values(), key=lambda r: (r.campaign, r.week, r.dong))


def report_csv(rows: list[ReportRow]) -> bytes:
    return sheets.csv_bytes([title for _, title in COLUMNS], (row.cells() for row in rows))


def report_xlsx(rows: list[ReportRow], path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = REPORT_SHEET
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
    return [
        (week, ack / called, unreached / called) for week, (called, ack, unreached) in sorted(totals.items()) if called
    ]


KOREAN_FONT_FILES = ("NanumGothic.ttf", "NanumBarunGothic.ttf", "NanumGothicCoding.ttf", "NanumSquareR.ttf")
NO_KOREAN_FONT = N_("No Korean font was found (install Debian's fonts-nanum); the chart's labels are in English.")


def korean_font() -> Path | None:
    """A Korean TrueType font that matplotlib knows of (Debian's fonts-nanum), or None."""
    from matplotlib import font_manager

    installed = {Path(path).name: Path(path) for path in font_manager.findSystemFonts(fontext="ttf")}
    for name in KOREAN_FONT_FILES:
        if name in installed:
            return installed[name]
    return None


def draw_chart(rows: list[ReportRow], path: Path | BinaryIO) -> str | None:
    """The weekly rates as a PNG, labelled in Korean. Without a Korean font the labels are English (never empty
    boxes), and the returned note says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    font_file = korean_font()
    words = korean() if font_file else None
    say = words.gettext if words else (lambda text: text)
    font = font_manager.FontProperties(fname=str(font_file)) if font_file else None
    rates = weekly_rates(rows)
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    weeks = [week.isoformat() for week, _, _ in rates]
    axes.plot(weeks, [100 * ack for _, ack, _ in rates], marker="o", label=say(N_("acknowledged %")))
    axes.plot(weeks, [100 * unreached for _, _, unreached in rates], marker="s", label=say(N_("final non-response %")))
    axes.set_ylim(0, 100)
    axes.set_xlabel(say(N_("campaign week")), fontproperties=font)
    axes.set_ylabel(say(N_("% of people called")), fontproperties=font)
    axes.set_title(say(N_("SafeCall weekly rates")), fontproperties=font)
    axes.legend(prop=font)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        figure.savefig(path)
    finally:
        plt.close(figure)
    return None if font_file else NO_KOREAN_FONT
