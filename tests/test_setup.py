"""Project set-up and settings (issue 2, points 1 and 2), through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from safecall.cli import create_app


def test_init_scaffolds_an_instance_from_the_shipped_defaults(cli):
    for folder in ("config", "campaigns", "ivr"):
        assert (cli.root / folder).is_dir()
    assert (cli.root / "config" / "safecall.toml").exists()
    assert (cli.root / "campaigns" / "weekly-safe-call.toml").exists()
    assert (cli.root / "ivr" / "safe-call.toml").exists()


def test_init_refuses_to_overwrite_an_instance(cli):
    result = cli.runner.invoke(cli.app, ["init", str(cli.root)])
    assert result.exit_code == 1
    assert "already holds an instance" in result.output


def test_instance_is_chosen_by_option_or_environment(cli, tmp_path, monkeypatch):
    runner = CliRunner()
    by_env = create_app(make_clock=lambda: cli.clock, environ={"SAFECALL_CONFIG": str(cli.root)})
    result = runner.invoke(by_env, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["instance"] == str(cli.root)
    by_file = runner.invoke(
        create_app(environ={}), ["--config", str(cli.root / "config" / "safecall.toml"), "config", "show", "--json"]
    )
    assert json.loads(by_file.output)["instance"] == str(cli.root)
    monkeypatch.chdir(tmp_path)
    nowhere = runner.invoke(create_app(environ={}), ["config", "show"])
    assert nowhere.exit_code == 1
    assert "safecall init" in nowhere.output


def test_config_show_masks_secrets(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(
            'database_url = "sqlite:///data/safecall.db"', 'database_url = { env = "OFFICE_DB_URL" }'
        ),
        encoding="utf-8",
    )
    app = create_app(
        make_clock=lambda: cli.clock,
        environ={"OFFICE_DB_URL": "postgresql://safecall:hunter2secret@127.0.0.1/safecall"},
    )
    result = CliRunner().invoke(app, ["--config", str(cli.root), "config", "show"])
    assert result.exit_code == 0, result.output
    assert "hunter2secret" not in result.output
    assert "env:OFFICE_DB_URL" in result.output
    assert "Asia/Seoul" in result.output and "KR" in result.output


def test_a_password_written_in_the_settings_file_is_refused(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(
            "sqlite:///data/safecall.db", "postgresql://u:hunter2secret@127.0.0.1/db"
        ),
        encoding="utf-8",
    )
    result = cli("config", "show", ok=False)
    assert result.exit_code == 1
    assert "safecall.toml: key 'database_url'" in result.output
    assert "hunter2secret" not in result.output


def test_bad_settings_name_the_file_the_key_and_the_problem(cli):
    settings = cli.root / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace('timezone = "Asia/Seoul"', 'timezone = "Asia/Busan"'), encoding="utf-8")
    result = cli("config", "show", ok=False)
    assert result.exit_code == 1
    assert f"{settings}: key 'timezone': unknown time zone 'Asia/Busan'" in result.output
    settings.write_text(text.replace('holiday_country = "KR"', 'holiday_country = "XX"'), encoding="utf-8")
    assert "key 'holiday_country': the holidays package has no country 'XX'" in cli("config", "show", ok=False).output
    settings.write_text(text.replace('holiday_country = "KR"', 'holiday_country = "KOR"'), encoding="utf-8")
    assert cli("config", "show").exit_code == 0  # an alias the holidays package knows is accepted
    settings.write_text("colour = 'blue'\n" + text, encoding="utf-8")
    assert "key 'colour': Extra inputs are not permitted" in cli("config", "show", ok=False).output
    settings.write_text(text + "\n[[teams]\n", encoding="utf-8")
    assert "safecall.toml: not valid TOML" in cli("config", "show", ok=False).output


def test_bad_trunk_file_names_the_key(cli):
    cli.set_trunks('default = "pbx"\n[trunks.simulated]\ntype = "simulated"\nchannels = 0\n')
    output = cli("config", "show", ok=False).output
    assert (
        "trunks.toml: key 'trunks.simulated.simulated.channels'" in output
        or "trunks.toml: key 'trunks.simulated.channels'" in output
    )
    assert "greater than or equal to 1" in output


def test_every_command_has_help_text(cli):
    def walk(command, path: list[str]):
        assert (command.help or "").strip(), f"no help text for {' '.join(path) or 'safecall'}"
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, path + [name])

    walk(get_command(cli.app), [])


@pytest.mark.parametrize(
    "line, message",
    [
        ("calls_per_second = inf", "key 'calls_per_second'"),
        ("calls_per_second = nan", "key 'calls_per_second'"),
        ("calls_per_second = 0", "key 'calls_per_second'"),
        ("calls_per_second = -2.5", "key 'calls_per_second'"),
        ("channels = 0", "key 'channels'"),
        ("channels = -1", "key 'channels'"),
    ],
)
def test_a_trunk_rate_or_channel_count_that_makes_no_sense_is_refused_before_anything_happens(
    cli, tmp_path, line, message
):
    from conftest import person_row, write_csv
    from sqlmodel import select

    from safecall.store import CampaignRun

    cli("recipients", "import", str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001")])))
    good = (cli.root / "config" / "trunks.toml").read_text(encoding="utf-8")
    cli.set_trunks(f'default = "simulated"\n[trunks.simulated]\ntype = "simulated"\n{line}\n')
    for command in (["config", "show"], ["campaign", "launch", "weekly-safe-call", "--fast"], ["trunk", "check"]):
        result = cli(*command, ok=False)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "trunks.toml: key 'trunks.simulated." in result.output and message.split("'")[1] + "'" in result.output
    cli.set_trunks(good)
    with cli.db().session() as session:
        assert list(session.exec(select(CampaignRun))) == []


def test_the_package_installs_the_command_and_no_top_level_cli_module(tmp_path):
    import importlib.metadata
    import subprocess
    import sys

    dist = importlib.metadata.distribution("safecall")
    assert dist.read_text("top_level.txt").split() == ["safecall"]
    assert [e.value for e in dist.entry_points if e.group == "console_scripts"] == ["safecall.cli:main"]
    # Outside the checkout nothing named `cli` can be imported, and `python -m safecall` is the command.
    outside = subprocess.run([sys.executable, "-c", "import cli"], cwd=tmp_path, capture_output=True, text=True)
    assert "No module named 'cli'" in outside.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "safecall", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SAFECALL_LANG": "en"},
    )
    assert shown.returncode == 0 and "Usage: safecall" in shown.stdout
