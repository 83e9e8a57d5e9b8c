"""What the CLI's commands do beyond one library call: run selection, dialling a run, report files, process plumbing.

The CLI parses arguments and prints; everything here takes plain values and returns plain results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from safecall.domain import RunState
from safecall.errors import InputError, NotFoundError
from safecall.i18n import N_
from safecall.stopping import stop_on_signals

if TYPE_CHECKING:  # the store and sqlalchemy load in the functions that use them: every CLI module imports parse_day
    from safecall.runs import RunStatus
    from safecall.services import Services
    from safecall.store import CampaignRun

Progress = Callable[[int, int], None]


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(N_("{option}: {text!r} is not a date (use YYYY-MM-DD)"), option=option, text=text) from None


def parse_moment(text: str, option: str) -> datetime:
    """An ISO time with its zone, for --now of a drill or a plan."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(N_("{option}: {text!r} is not an ISO time"), option=option, text=text) from None
    if moment.tzinfo is None:
        raise InputError(N_("{option}: give a time zone, e.g. 2026-11-23T10:00+09:00"), option=option)
    return moment


def refuse_fast(fast: bool) -> None:
    if fast:
        raise InputError(
            N_(
                "--fast would play a real run in virtual time and use it up; rehearse on a copy of the data "
                "with 'safecall drill CAMPAIGN' instead"
            )
        )


def dial_run(services: Services, campaign_name: str, run_id: int, on_progress: Progress | None = None) -> RunStatus:
    """Dial one run until it closes. SIGTERM or Ctrl-C: no new calls; the calls in flight finish and are written."""
    from safecall.runs import run_status

    dialer = services.dialer(services.campaign(campaign_name))
    try:
        with stop_on_signals() as stop:
            dialer.run(run_id, on_progress=on_progress, stop_requested=stop.is_set)
    finally:
        services.close_trunks()
    return run_status(services.db, run_id)


def launch_week(services: Services, campaign_name: str) -> tuple[CampaignRun, bool]:
    """This week's run of a campaign: (run, created); an existing run is returned to be resumed."""
    from safecall.runs import launch_run

    definition = services.campaign(campaign_name)
    return launch_run(
        services.db,
        definition,
        definition.calendar(services.instance),
        now=services.now(),
        order=services.first_call_order(definition),
        rules=services.rules_snapshot(campaign_name),
    )


def has_database(instance) -> bool:
    """Whether the instance's database exists (a server's always does; a SQLite file once it is created)."""
    from sqlalchemy.engine import make_url

    url = make_url(instance.database_url())
    return url.get_backend_name() != "sqlite" or bool(url.database and Path(url.database).exists())


def runs_to_dial(services: Services, run_id: int | None) -> list[CampaignRun]:
    """The run asked for, or every open run."""
    from safecall.runs import list_runs

    runs = [r for r in list_runs(services.db) if (r.id == run_id if run_id is not None else r.status == RunState.OPEN)]
    if not runs:
        if run_id is not None:
            raise NotFoundError(N_("no run {run}"), run=run_id)
        raise NotFoundError(N_("no open run; launch one with 'safecall campaign launch NAME'"))
    return runs


def run_to_show(services: Services, run_id: int | None) -> RunStatus:
    """The status of the run asked for, or of the latest run."""
    from safecall.runs import list_runs, run_status
    from safecall.store import stored_id

    with services.db.unit(read_only=True) as unit:  # the command's one read
        runs = list_runs(unit)
        if not runs:
            raise NotFoundError(N_("no runs yet; launch one with 'safecall campaign launch NAME'"))
        return run_status(unit, stored_id(runs[-1]) if run_id is None else run_id)


def writable_file(path: Path, option: str) -> Path:
    """Refuse an output file whose folder does not exist, before anything is done."""
    folder = path.expanduser().absolute().parent
    if not folder.is_dir():
        raise InputError(
            N_("{option} {path}: the folder {folder} does not exist"), option=option, path=path, folder=folder
        )
    if path.is_dir():
        raise InputError(N_("{option} {path}: this is a folder; give a file name"), option=option, path=path)
    return path


def report_weeks(services: Services, start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """--from/--to days as the campaign weeks they fall in."""
    from safecall.policy import week_start

    tz = services.instance.tz

    def as_week(text: str | None, option: str) -> date | None:
        if not text:
            return None
        return week_start(datetime.combine(parse_day(text, option), datetime.min.time(), tzinfo=tz), tz)

    return as_week(start, "--from"), as_week(end, "--to")


def write_report(services: Services, rows: list, fmt: str, output: Path | None) -> Path:
    """The weekly report as a CSV or XLSX file (default: in the outbox)."""
    from safecall.reports import report_csv, report_xlsx
    from safecall.visits import private_dir

    if fmt not in ("csv", "xlsx"):
        raise InputError(N_("unknown format {fmt!r} (use table, csv or xlsx)"), fmt=fmt)
    target = output or services.instance.outbox / f"report-weekly.{fmt}"
    private_dir(target.parent)
    if fmt == "csv":
        target.write_bytes(report_csv(rows))
    else:
        report_xlsx(rows, target)
    return target


def run_until_stopped(stop, body: Callable[[], None], seconds: float | None) -> None:
    """A long-running command: JSON log lines on stderr; SIGTERM, SIGINT or `seconds` set `stop` (an Event)."""
    import threading

    timer = threading.Timer(seconds, stop.set) if seconds else None
    if timer:
        timer.start()
    try:
        with json_log_lines(), stop_on_signals(stop):
            body()
    finally:
        if timer:
            timer.cancel()


@contextmanager
def json_log_lines():
    """While a service runs: SafeCall's log as JSON lines on stderr, what journald keeps and alerts read."""
    import logging

    from safecall.events import JsonLineFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    root_logger = logging.getLogger("safecall")
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        root_logger.removeHandler(handler)


def serve_ivr(services: Services, campaign_name: str, seconds: float | None, on_started: Callable[[], None]) -> None:
    """Host a campaign's IVR side (webhooks or FastAGI) until SIGTERM, Ctrl-C or `seconds`."""
    with json_log_lines():
        services.trunk(services.campaign(campaign_name).trunk)  # started: its FastAGI or webhook server listens
        on_started()
        with stop_on_signals() as stop:
            stop.wait(seconds)
        services.close_trunks()


def draw_report_chart(rows: list, path: Path) -> str | None:
    """The weekly rates as a PNG; returns a note for the user when the chart could not use a Korean font."""
    from safecall.reports import draw_chart

    try:
        return draw_chart(rows, path)
    except OSError as exc:
        raise InputError(
            N_("--chart {path}: cannot write the chart ({reason})"), path=path, reason=exc.strerror or exc
        ) from exc


def log_failure(environ: Mapping[str, str], command: str, details: str) -> Path | None:
    """Append an unexpected failure's details to the user's SafeCall log (phone numbers masked); its path, or None."""
    from safecall.phones import mask_text

    base = environ.get("XDG_STATE_HOME") or (
        Path(environ["HOME"]) / ".local" / "state" if environ.get("HOME") else None
    )
    if not base:
        return None
    path = Path(base) / "safecall" / "errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {stamp} {command}\n{mask_text(details)}\n")
    except OSError:
        return None
    return path
