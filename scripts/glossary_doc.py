"""Write docs/glossary.md from safecall/glossary.py
(run after changing the glossary; tests/test_glossary.py checks it)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safecall import glossary as g  # noqa: E402

HEAD = """# Glossary (용어집)

One Korean word for each thing people see: the CLI, the web pages, the lists, the reports, the e-mails and the texts.
The code reads these words from `safecall/glossary.py` (this page is written from it by `scripts/glossary_doc.py`).
`tests/test_glossary.py` fails when a Korean message, template or string uses a word from the table "Words not to
use", an open particle such as 을(를), "안전" alone for the outcome, or an English word outside the allowlist; its
message names the word to write instead. Words are those a 주민센터 uses in its own papers.

A particle after a value is named in the field, `실행 {run:을} 시작했습니다`: `safecall/particles.py` (tossi)
writes 을 or 를 for the value.
"""


def table(lines: list[str], title: str, mapping: dict, head=("keyword", "Korean")) -> None:
    lines += [f"## {title}", "", f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    lines += [f"| `{key}` | {word} |" for key, word in mapping.items()]
    lines.append("")


def main() -> None:
    lines = [HEAD]
    table(lines, "Why a person is on a list (명단 사유)", g.REASON)
    table(lines, "List columns (명단 열)", g.COLUMN)
    table(lines, "Visit, call-back and number outcomes (결과)", g.OUTCOME)
    table(lines, "Call results (통화 결과)", g.DISPOSITION)
    table(lines, "Calls for help put through (당직자 연결)", g.TRANSFER)
    table(lines, "A person's status, a week's state (상태)", {**g.STATUS, **g.MEMBER_STATE})
    table(lines, "Close reasons (종료 사유)", g.CLOSE_REASON)
    table(lines, "Runs (회차 종류, 회차 상태)", {**g.RUN_LABEL, **g.RUN_STATUS})
    table(lines, "Audit records (감사 기록)", {**g.AUDIT_SUBJECT, "all teams": g.ALL_TEAMS})
    table(lines, "Lists (명단 종류)", g.LIST_KIND)
    table(lines, "Roles (역할)", g.ROLE)
    table(lines, "Weekly report labels (주간 보고)", g.REPORT)
    table(lines, "Actions and fields (버튼, 항목)", g.ACTION)
    table(
        lines,
        "Short forms accepted when typed (입력 줄임말)",
        {f"{kind}: {typed}": keyword for kind, words in g.KEYWORD_ALIASES.items() for typed, keyword in words.items()},
        ("typed", "keyword"),
    )
    table(lines, "Words not to use (쓰지 않는 말)", g.AVOID, ("not this", "write this"))
    lines += [
        "## English words allowed in Korean text",
        "",
        "Product and protocol names, units and file kinds: " + ", ".join(sorted(g.LATIN_ALLOWED)) + ".",
        "",
        "Typed as they are (settings keys, tools' commands, examples): " + ", ".join(sorted(g.LATIN_TYPED)) + ";",
        "also the English keywords (safe, not_home, …), command names, options (`--team`), settings keys with",
        "`_` or `.`, paths and placeholders.",
        "",
    ]
    (ROOT / "docs" / "glossary.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
