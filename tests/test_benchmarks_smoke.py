"""Every benchmark script starts and finishes on a tiny workload, so a script that has rotted fails here.

Nothing is timed: the figures come from the full runs in BENCHMARKS.md. Each script runs as a real process, as
its documented command does, and its JSON must carry the figures it exists to report. The scripts that need a
PostgreSQL server (scale-out, the national week) run where the store tests do: when SAFECALL_TEST_POSTGRES_URL
names one (.ci/run starts it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SAFECALL_TEST_POSTGRES_URL")


def run_script(args: list[str], tmp_path: Path, **env: str) -> dict:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, *args, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(out.read_text(encoding="utf-8"))


def test_ami_ingest(tmp_path):
    result = run_script(["benchmarks/ami_ingest.py", "--repeat", "1"], tmp_path)
    assert (
        result["events"] > 0
        and result["safecall"]["events_per_second"] > 0
        and result["panoramisk"]["events_per_second"] > 0
    )


@pytest.mark.parametrize("pacer", ["engine", "fixed"])
def test_engine_week(tmp_path, pacer):
    result = run_script(
        [
            "benchmarks/engine_week.py",
            "--people",
            "40",
            "--channels",
            "4",
            "--pacer",
            pacer,
            "--calls-per-minute",
            "60",
        ],
        tmp_path,
    )
    assert result["attempts"] >= 40 and 0 < result["utilisation_while_due"] <= 1


def test_finish_weeks(tmp_path):
    result = run_script(["benchmarks/finish_weeks.py", "--people", "60", "--channels", "2", "--weeks", "1"], tmp_path)
    week = result["weeks"][0]
    assert week["attempts"] >= 60 and "estimate" in week


def test_import_roster(tmp_path):
    result = run_script(["benchmarks/import_roster.py", "--rows", "100"], tmp_path)
    (round_,) = result["rounds"]
    for kind in ("csv", "xlsx", "xlsx_shared_strings"):
        assert "100" in round_[kind]["output"] and round_[kind]["tree_peak_pss_mb"] > 0
        assert 0 < round_[kind]["importer_cpu_seconds"] <= round_[kind]["cpu_seconds"]


def test_retry_order():
    done = subprocess.run(
        [sys.executable, "benchmarks/retry_order.py", "--people", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["retries_first"]["makespan_hours"] > 0


def test_web_team_list(tmp_path):
    result = run_script(
        ["benchmarks/web_team_list.py", "--tasks", "30", "--users", "3", "--logging-in", "1", "--seconds", "1"],
        tmp_path,
    )
    [only] = result["rounds"]
    assert only["errors"] == 0 and only["pages"]["count"] > 0 and only["logins"]["count"] == 1


def test_web_team_list_side_by_side(tmp_path):
    # This checkout against itself as the baseline: each side builds and serves its own office, the order alternates.
    result = run_script(
        [
            "benchmarks/web_team_list.py",
            "--tasks",
            "30",
            "--users",
            "3",
            "--logging-in",
            "1",
            "--seconds",
            "1",
            "--baseline",
            str(ROOT),
            "--rounds",
            "2",
        ],
        tmp_path,
    )
    assert [(r["round"], r["code"]) for r in result["rounds"]] == [
        (1, "this"),
        (1, "baseline"),
        (2, "baseline"),
        (2, "this"),
    ]
    assert all(r["errors"] == 0 and r["pages"]["count"] > 0 for r in result["rounds"])
    assert len(result["summary"]["pages_per_second_this_over_baseline"]["rounds"]) == 2


def test_webhook_latency(tmp_path):
    result = run_script(["benchmarks/webhook_latency.py", "--rate", "30", "--seconds", "1"], tmp_path)
    assert result["requests"] == 30 and result["errors"] == 0 and result["p99_ms"] > 0
    # The keypresses are stored: a benchmark whose calls the server refuses (a CallSid not the attempt's) measured
    # only refusals, and once did.
    assert result["acknowledgements_stored"] > 0


def test_engine_ab_script(tmp_path):
    # Builds a worktree of the given commit and alternates it with this checkout: HEAD against itself, one round.
    done = subprocess.run(
        ["bash", "benchmarks/engine_ab.sh", "HEAD", "30", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["old", "1"], ["new", "1"]] and all(
        "attempts=" in line for line in lines
    )


def test_shell_scripts_parse():
    # cpu_window.sh reads a running national week's processes; here only that bash can read it.
    for script in ("benchmarks/cpu_window.sh", "benchmarks/engine_ab.sh"):
        done = subprocess.run(["bash", "-n", script], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not POSTGRES_URL, reason='no PostgreSQL server: start one with `eval "$(.ci/postgres start)"`')
def test_scaleout(tmp_path):
    result = run_script(
        ["benchmarks/scaleout.py", "--people", "30", "--channels", "2", "--speed", "200", "--workers", "1"], tmp_path
    )
    (run,) = result["runs"]
    assert run["attempts"] >= 30 and run["attempts_dialled_twice"] == 0


@pytest.mark.skipif(not POSTGRES_URL, reason='no PostgreSQL server: start one with `eval "$(.ci/postgres start)"`')
def test_national(tmp_path):
    # A short day: how many calls fit depends on how soon the worker is up on a busy machine, so only the
    # figures' presence and "nobody dialled twice" are checked.
    result = run_script(
        [
            "benchmarks/national.py",
            "--people",
            "100",
            "--districts",
            "2",
            "--workers",
            "1",
            "--channels",
            "4",
            "--speed",
            "5000",
            "--days",
            "1",
        ],
        tmp_path,
    )
    assert result["attempts"] >= 0 and result["attempts_dialled_twice"] == 0 and "worker_peak_memory_mb" in result


def test_plan_vs_naive(tmp_path):
    result = run_script(
        ["benchmarks/plan_vs_naive.py", "--scale", "0.02", "--weeks", "1", "--seeds", "issue"], tmp_path
    )
    assert result["weeks"] and all({"plan", "naive", "measured"} <= set(week) for week in result["weeks"])
    assert len(result["scores"]) == 6 and all("error_visits" in score for score in result["scores"])


def test_plan_defaults(tmp_path):
    result = run_script(["benchmarks/plan_defaults.py", "--scale", "0.02", "--weeks", "1"], tmp_path)
    assert result["classes"] and len(result["seconds_by_call"]) >= 1


def test_startup(tmp_path):
    result = run_script(["benchmarks/startup.py", "--rounds", "1"], tmp_path)
    assert set(result["summary"]) == {"minimal typer --help", "this: safecall --help", "this: safecall campaign status"}


def test_safety_clock(tmp_path):
    result = run_script(["benchmarks/safety_clock.py", "--people", "120", "--channels", "2"], tmp_path)
    without, with_ = result["without_follow_ups"], result["with_follow_ups"]
    assert without["texts_sent"] == 0 and with_["texts_sent"] > 0 and without["clock_count"] > 0
    assert with_["tap_attempts"] == with_["taps"].get("recorded", 0)


def test_import_steps(tmp_path):
    result = run_script(["benchmarks/import_steps.py", "--rows", "100", "--repeat", "1"], tmp_path)
    (repeat,) = result["repeats"]
    assert repeat["csv"]["total"] >= 0 and "calamine: open and parse the sheet" in repeat["xlsx"]
    assert "calamine: open and parse the sheet" in repeat["xlsx_shared_strings"]
