"""`--help` at 80 columns, in Korean and English, never cuts a keyword or a word (issue 27).

Every command and sub-command of the app is drawn with CliRunner on an 80-column terminal. The words of its help
(the command's, its options' and arguments') must each be found whole on a rendered line, and every keyword an option
accepts (outcomes, list kinds, roles, reasons, statuses: the stored English word, the Korean glossary word and the
short forms people type) must be on one line as often as the help text names it. Type labels and argument names are
Korean in Korean and Typer's own in English.
"""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from safecall.glossary import KEYWORD_ALIASES
from safecall.i18n import CALLBACK_OUTCOME, CLOSE_REASON, LIST_KIND, NUMBER_OUTCOME, OUTCOME, PERSON_STATUS, ROLE, Texts

KEYWORD_GROUPS = {
    "outcome": OUTCOME + CALLBACK_OUTCOME + NUMBER_OUTCOME,
    "kind": LIST_KIND,
    "role": ROLE,
    "reason": CLOSE_REASON,
    "status": PERSON_STATUS,
}
BOX = re.compile(r"[│╭╮╰╯─]")


def keyword_spellings() -> set[str]:
    """Every spelling an option takes for a keyword: the stored word, its Korean glossary word, and typed aliases."""
    korean = Texts("ko")
    spellings = set()
    for context, keys in KEYWORD_GROUPS.items():
        for key in keys:
            spellings |= {key, korean.word(context, key)}
        spellings |= set(KEYWORD_ALIASES.get(context, {}))
    return {s for s in spellings if s}


def commands(app) -> dict[tuple[str, ...], object]:
    found = {}

    def walk(command, path):
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + (name,))

    walk(get_command(app), ())
    return found


def one_line(text: str) -> str:
    return " ".join(text.split())


def render(cli, path: tuple[str, ...], lang: str) -> list[str]:
    cli.use_locale(lang)
    page = cli.runner.invoke(cli.app, [*path, "--help"], env={"COLUMNS": "80", "LANG": lang}, terminal_width=80)
    assert page.exit_code == 0, (path, page.output)
    lines = page.output.splitlines()
    assert max(len(line) for line in lines) <= 80, path  # Rich drew it for 80 columns
    return [one_line(BOX.sub(" ", line)) for line in lines]


def help_texts(command, texts: Texts) -> list[str]:
    """The page's own texts as the code and catalogue give them: the command's help and its parameters' help."""
    texts_ = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
    return [one_line(texts._(text).replace("\b", " ")) for text in texts_ if text]


@pytest.mark.parametrize("lang", ["C.UTF-8", "en_US.UTF-8"])
def test_every_help_page_at_80_columns_keeps_keywords_and_words_whole(cli, lang):
    texts = Texts("en" if lang.startswith("en") else "ko")
    spellings = keyword_spellings()
    pages = commands(cli.app)
    assert len(pages) > 30
    checked_keywords = 0
    for path, command in pages.items():
        lines = render(cli, path, lang)
        # get_command built a fresh tree: the help in the language is read from the catalogue, as the app does
        sources = help_texts(command, texts)
        rendered_words = {word for line in lines for word in line.split()}
        for source in sources:
            missing = [word for word in source.split() if word not in rendered_words]
            assert not missing, (lang, path, missing, "\n".join(lines))
        assert not any("…" in line for line in lines), (lang, path, "\n".join(lines))
        for spelling in spellings:
            wanted = sum(source.count(spelling) for source in sources)
            if wanted:
                checked_keywords += 1
                shown = sum(line.count(spelling) for line in lines)
                assert shown >= wanted, (lang, path, spelling, wanted, shown, "\n".join(lines))
    assert checked_keywords > 20  # the outcome, kind, role, reason and status keywords were among them


def test_the_outcome_keywords_are_whole_and_listed_in_both_languages(cli):
    korean = render(cli, ("visits", "record"), "C.UTF-8")
    for key in OUTCOME + CALLBACK_OUTCOME + NUMBER_OUTCOME:
        word = Texts("ko").word("outcome", key).split("(")[0]  # 부재(재방문): the help names 부재
        assert any(key in line and word in line for line in korean), (key, word, "\n".join(korean))
    english = render(cli, ("visits", "record"), "en_US.UTF-8")
    assert any("emergency_services" in line and "119 인계" in line for line in english), "\n".join(english)
    assert any("called_no_answer" in line and "통화 안 됨" in line for line in english), "\n".join(english)


def test_every_argument_and_option_type_has_a_korean_word(cli):
    from typer.core import TyperArgument, TyperOption

    from safecall.helpchrome import ARGUMENT_NAME, TYPE_LABEL

    for path, command in commands(cli.app).items():
        for param in command.params:
            if isinstance(param, TyperArgument):
                assert param.name in ARGUMENT_NAME and param.bare_type() in TYPE_LABEL, (
                    path,
                    param.name,
                    param.bare_type(),
                )
            elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                assert param.bare_type() in TYPE_LABEL, (path, param.name, param.bare_type())


def test_type_labels_and_argument_names_are_korean_in_korean_and_typers_own_in_english(cli):
    korean = "\n".join(render(cli, ("visits", "record"), "C.UTF-8"))
    assert "{과제번호}" in korean and "과제번호 <정수>" in korean and "--outcome <글자>" in korean, korean
    korean_pages = "\n".join(line for path in commands(cli.app) for line in render(cli, path, "C.UTF-8"))
    for english in (
        "<int>",
        "<str>",
        "<bool>",
        "<path>",
        "<float>",
        "COMMAND",
        "[ARGS]",
        "TEXT",
        "INTEGER",
        "PATH",
        "{task}",
        "{name}",
        "{person}",
        "{file}",
        "{username}",
    ):
        assert english not in korean_pages, english
    for label in (
        "<정수>",
        "<글자>",
        "<경로>",
        "<숫자>",
        "{이름}",
        "{대상자}",
        "{파일}",
        "{아이디}",
        "{폴더}",
        "[실행번호]",
        "명령 [인수]...",
    ):
        assert label in korean_pages, label
    # The same app asked again in English: Typer's own words come back (the labels are set per invocation).
    english = "\n".join(render(cli, ("visits", "record"), "en_US.UTF-8"))
    assert "{task}" in english and "task <int>" in english and "--outcome <str>" in english, english
    assert "과제번호" not in english and "<정수>" not in english
    assert "COMMAND [ARGS]..." in "\n".join(render(cli, ("visits",), "en_US.UTF-8"))
    assert "{과제번호}" in "\n".join(render(cli, ("visits", "record"), "C.UTF-8"))
