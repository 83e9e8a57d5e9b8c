"""Usage errors (issue 27): a mistyped command, an unknown option, a missing argument, a bad, out-of-range or missing
value are Korean in Korean mode, with no English outside the glossary's allowlist, and Typer's own words in English.

The app is run end to end with CliRunner as `safecall`; the values the user typed are taken out before the Latin
words of the Korean output are checked (they are the user's, not the app's).
"""

from __future__ import annotations

from typing import Literal

import pytest
import typer
from test_glossary import allowed_latin, latin_words
from typer.testing import CliRunner

from safecall.cli.context import Injected, SafeCallGroup
from safecall.clock import SystemClock

# kind: (arguments, what the Korean error says, what Typer says in English)
CASES = {
    "mistyped command": (
        ["campaing"],
        "'campaing' 명령은 없습니다. 비슷한 명령: 'campaign'",
        "No such command 'campaing'. Did you mean 'campaign'?",
    ),
    "unknown option": (
        ["report", "safety-clock", "--dayz", "3"],
        "--dayz 옵션은 없습니다. 비슷한 옵션: --days",
        "No such option: --dayz (Possible options: --days)",
    ),
    "missing argument": (["visits", "record"], "'과제번호' 인수가 빠졌습니다.", "Missing argument 'task'."),
    "bad integer": (
        ["report", "safety-clock", "--days", "abc"],
        "'--days' 값이 잘못되었습니다. 'abc'는 정수가 아닙니다.",
        "Invalid value for '--days': Input should be a valid integer",
    ),
    "out of range": (
        ["report", "safety-clock", "--days", "367"],
        "'--days' 값이 잘못되었습니다. 366 이하여야 합니다.",
        "Invalid value for '--days': Input should be less than or equal to 366",
    ),
    "below range": (
        ["report", "safety-clock", "--days", "0"],
        "'--days' 값이 잘못되었습니다. 1 이상이어야 합니다.",
        "Invalid value for '--days': Input should be greater than or equal to 1",
    ),
    "missing option value": (
        ["report", "safety-clock", "--days"],
        "--days 옵션 뒤에 값을 넣어 주세요.",
        "Option '--days' requires an argument.",
    ),
    "extra argument": (
        ["report", "safety-clock", "extra"],
        "필요 없는 인수가 더 있습니다: extra",
        "Got unexpected extra argument(s) (extra)",
    ),
    "value given to a flag": (
        ["report", "safety-clock", "--help=yes"],
        "--help 옵션에는 값을 붙이지 않습니다.",
        "Option '--help' does not take a value.",
    ),
    "unknown root option": (["--verbose", "doctor"], "--verbose 옵션은 없습니다.", "No such option: --verbose"),
}


def flat(text: str) -> str:
    """The output without Rich's panel borders, on one line."""
    return " ".join(text.translate(str.maketrans("│╭╮╰╯─", "      ")).split())


def english_in(output: str, typed: list[str]) -> list[str]:
    for value in sorted(typed, key=len, reverse=True):
        output = output.replace(value, " ")
    allowed = allowed_latin()
    return [word for word in latin_words(flat(output)) if word not in allowed]


@pytest.mark.parametrize("kind", CASES)
def test_usage_errors_are_korean_in_korean_mode(cli, kind):
    args, korean, _english = CASES[kind]
    cli.use_locale("ko_KR.UTF-8")
    result = cli.runner.invoke(cli.app, args, prog_name="safecall")
    assert result.exit_code == 2, result.output  # still Click's usage error
    output = flat(result.output)
    assert korean in output and "오류" in output
    assert english_in(result.output, args) == [], result.output


@pytest.mark.parametrize("kind", CASES)
def test_usage_errors_keep_typers_english_in_english_mode(cli, kind):
    args, korean, english = CASES[kind]
    result = cli.runner.invoke(cli.app, args, prog_name="safecall")
    assert result.exit_code == 2, result.output
    output = flat(result.output)
    assert english in output and "Error" in output
    assert korean not in output


def test_the_help_hint_under_a_usage_error_follows_the_language(cli):
    result = cli.runner.invoke(cli.app, ["report", "safety-clock", "--days", "abc"], prog_name="safecall")
    assert "Try 'safecall report safety-clock --help' for help." in flat(result.output)
    cli.use_locale("ko_KR.UTF-8")
    result = cli.runner.invoke(cli.app, ["report", "safety-clock", "--days", "abc"], prog_name="safecall")
    assert "도움말: 'safecall report safety-clock --help'" in flat(result.output)
    assert "Try" not in result.output


def choice_app(environ: dict) -> typer.Typer:
    """The app has no option with fixed choices yet; this one runs on the same root group."""
    app = typer.Typer(cls=SafeCallGroup, add_completion=False, context_settings={"obj": Injected(SystemClock, environ)})

    @app.callback()
    def root():
        pass

    @app.command()
    def pick(colour: Literal["빨강", "파랑"] = typer.Option("빨강", "--colour")):
        typer.echo(colour)

    return app


def test_a_value_outside_the_choices_names_them_in_korean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(choice_app({"LANG": "ko_KR.UTF-8"}), ["pick", "--colour", "초록"], prog_name="safecall")
    assert result.exit_code == 2, result.output
    assert "'--colour' 값이 잘못되었습니다. '초록'은 쓸 수 없습니다. '빨강', '파랑' 중 하나를 고르세요." in flat(
        result.output
    )
    assert english_in(result.output, ["pick", "--colour"]) == []
    result = runner.invoke(choice_app({"LANG": "en_US.UTF-8"}), ["pick", "--colour", "초록"], prog_name="safecall")
    assert (
        result.exit_code == 2
        and "Invalid value for '--colour': Value error, '초록' is not one of '빨강', '파랑'." in flat(result.output)
    )
