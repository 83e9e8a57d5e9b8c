"""Korean as an officer writes it (issue 27): one word per concept (safecall/glossary.py, docs/glossary.md), no open
particles ("을(를)"), no English words outside a short allowlist.

Rules, for anyone adding Korean text (the catalogue's msgstr, a web template, a Korean string in the code):
1. Never an open particle such as 을(를), 이(가), 은(는), 과(와), (으)로: name the particle in the field,
   "실행 {run:을} 시작했습니다" (safecall/particles.py chooses 을 or 를 for the word).
2. A word in glossary.AVOID is never shown: the failure says which glossary word to write instead.
3. Outcome, disposition and list-kind words in the catalogue are exactly the glossary's.
4. "안전" alone is not an outcome: write "안전 확인".
5. Latin words only from glossary.LATIN_ALLOWED, the English keywords people may type, command names, config keys
   (with "_" or "."), options (--x), paths, placeholders and `code`.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from safecall import glossary
from safecall.i18n import (
    CALLBACK_OUTCOME,
    CLOSE_REASON,
    DELIVERY_STATUS,
    DISPOSITION,
    LIST_KIND,
    NUMBER_OUTCOME,
    OUTCOME,
    PERSON_STATUS,
    REPORTED_OUTCOME,
    RUN_STATUS,
)
from safecall.particles import attach, format_message

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "safecall" / "locale" / "ko" / "LC_MESSAGES" / "safecall.po"
TEMPLATES = sorted((ROOT / "safecall" / "web" / "templates").glob("*.html"))
OPEN_PARTICLE = re.compile(r"[가-힣A-Za-z0-9'\"}\])]\((?:을|를|이|가|은|는|과|와|으|아|야|이나|이라)\)|\(으\)로")
LONE_SAFE = re.compile(r"(?<![가-힣])안전(?![가-힣]| 확인)")
HANGUL = re.compile(r"[가-힣]")


def catalogue():
    with PO.open("rb") as handle:
        return read_po(handle)


def korean_texts() -> list[tuple[str, str]]:
    """(where, text) of every Korean text people see: msgstrs, templates, Korean string literals in the code."""
    found = []
    for message in catalogue():
        if message.id and message.string:
            text = message.string if isinstance(message.string, str) else message.string[0]
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            found.append((f"safecall.po msgid {msgid[:60]!r}", text))
    for path in TEMPLATES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found.append((f"{path.relative_to(ROOT)}:{number}", line))
    for path in sorted((ROOT / "safecall").rglob("*.py")):
        if path.name == "glossary.py" or "migrations" in path.parts or not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for literal in re.findall(r"\"([^\"]*)\"|'([^']*)'", code):
                text = literal[0] or literal[1]
                if HANGUL.search(text):
                    found.append((f"{path.relative_to(ROOT)}:{number}", text))
    return found


def test_particles_are_chosen_for_the_word():
    assert format_message("실행 {run:을} 시작했습니다", run=1) == "실행 1을 시작했습니다"
    assert format_message("실행 {run:을} 시작했습니다", run=2) == "실행 2를 시작했습니다"
    assert format_message("과제 {task:이} 없습니다", task=10) == "과제 10이 없습니다"
    assert format_message("{name!r:이} 없습니다", name="nosuch") == "'nosuch'가 없습니다"
    assert format_message("{user:으로} 로그인했습니다", user="kim") == "kim으로 로그인했습니다"
    assert format_message("{user:으로} 로그인했습니다", user="admin") == "admin으로 로그인했습니다"
    assert format_message("{team:과} {dong:은}", team="1팀", dong="부암동") == "1팀과 부암동은"
    assert attach("김철수", "을") == "김철수를" and attach("서울", "으로") == "서울로"


def test_no_open_particle_anywhere_people_read():
    bad = [f"{where}: {text!r}" for where, text in korean_texts() if OPEN_PARTICLE.search(text)]
    assert not bad, (
        "open particles; write the particle in the field instead, e.g. '{run:을}' "
        "(safecall/particles.py picks 을/를):\n" + "\n".join(bad)
    )


def test_no_word_the_glossary_says_to_avoid():
    bad = [
        f"{where}: {word!r} -> use {instead!r}"
        for where, text in korean_texts()
        for word, instead in glossary.AVOID.items()
        if word in text
    ]
    assert not bad, "words outside the glossary (safecall/glossary.py, docs/glossary.md):\n" + "\n".join(bad)


def test_safe_is_always_안전_확인():
    bad = [
        f"{where}: {text!r} -> use '{glossary.SAFE_WORD}'" for where, text in korean_texts() if LONE_SAFE.search(text)
    ]
    assert not bad, "\n".join(bad)


def test_keyword_words_in_the_catalogue_are_the_glossarys():
    words = {(m.context, m.id): m.string for m in catalogue() if m.context}
    expected = {("outcome", k): glossary.OUTCOME[k] for k in REPORTED_OUTCOME}
    expected.update({("disposition", k): glossary.DISPOSITION[k] for k in DISPOSITION})
    expected.update({("kind", k): glossary.LIST_KIND[k] for k in LIST_KIND})
    expected.update({("run", k): glossary.RUN_STATUS[k] for k in RUN_STATUS})
    bad = [
        f"msgctxt {c!r} msgid {k!r}: {words.get((c, k))!r} -> use {w!r}"
        for (c, k), w in expected.items()
        if words.get((c, k)) != w
    ]
    assert not bad, "\n".join(bad)
    assert set(CALLBACK_OUTCOME + NUMBER_OUTCOME + OUTCOME) <= set(glossary.OUTCOME)
    assert CLOSE_REASON and PERSON_STATUS and RUN_STATUS and DELIVERY_STATUS  # keyword kinds the glossary doc lists


def allowed_latin() -> set[str]:
    from typer.main import get_command

    from safecall.cli import create_app

    allowed = set(glossary.LATIN_ALLOWED) | glossary.LATIN_TYPED | set(glossary.ROLE)
    for kind in (OUTCOME, CALLBACK_OUTCOME, NUMBER_OUTCOME, CLOSE_REASON, PERSON_STATUS, LIST_KIND, DISPOSITION):
        allowed.update(kind)
    allowed.update({"table", "visit", "callback", "number", "true", "false"})

    def walk(command):
        allowed.add(command.name or "")
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(get_command(create_app()))
    return allowed


def latin_words(text: str) -> list[str]:
    text = re.sub(r"\{[^{}]*\}|`[^`]*`|<[^>]*>|\S*[/\\]\S*|(?<![\w-])--?[a-z][a-z0-9-]*|https?:\S+", " ", text)
    text = re.sub(r"\[[a-z_.]+\]", " ", text)  # settings sections: [testing], [sms.alimtalk]
    text = re.sub(r"(?<![A-Za-z0-9])\d+(?:ms|s|m|h|d)(?![A-Za-z])", " ", text)  # durations as typed: 30m, 1h
    # settings keys (ami_host, notify.allow_lms), file names (manager.conf), environment names; Hangul may follow them
    text = re.sub(r"(?<![A-Za-z0-9_])[A-Za-z][A-Za-z0-9]*(?:[_.][A-Za-z0-9]+)+(?![A-Za-z0-9_])", " ", text)
    return re.findall(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*", text)


def test_catalogue_has_no_english_outside_the_allowlist():
    allowed = allowed_latin()
    bad = []
    for message in catalogue():
        if not message.id or not message.string or message.context:
            continue
        text = message.string if isinstance(message.string, str) else message.string[0]
        words = [w for w in latin_words(text) if w not in allowed]
        if words:
            bad.append(
                f"{message.id if isinstance(message.id, str) else message.id[0]!r}: {sorted(set(words))} in {text!r}"
            )
    assert not bad, (
        "English in Korean messages; translate it, or add a product name, unit or file kind to "
        "glossary.LATIN_ALLOWED:\n" + "\n".join(bad)
    )


def test_the_glossary_document_lists_every_word_of_the_module():
    document = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    for table in (
        glossary.OUTCOME,
        glossary.REASON,
        glossary.COLUMN,
        glossary.ROLE,
        glossary.LIST_KIND,
        glossary.DISPOSITION,
        glossary.REPORT,
        glossary.ACTION,
        glossary.STATUS,
        glossary.MEMBER_STATE,
        glossary.CLOSE_REASON,
    ):
        for word in table.values():
            assert word in document, f"docs/glossary.md lacks {word!r}: run scripts/glossary_doc.py"
    for word, instead in glossary.AVOID.items():
        assert word in document, f"docs/glossary.md lacks the avoided word {word!r} ({instead})"
