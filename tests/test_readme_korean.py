"""A new officer follows README "Using it" under LANG=C.UTF-8 (issue 27): every line the commands print is Korean,
with no open particle and no English word outside the glossary's allowlist."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import Cli
from test_glossary import OPEN_PARTICLE, allowed_latin, latin_words

ROOT = Path(__file__).resolve().parents[1]


def using_it_commands() -> list[list[str]]:
    """The `safecall ...` lines of the first code block under "## Using it", comments dropped."""
    section = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("## Using it", 1)[1]
    block = section.split("\n\n", 2)[1]
    commands = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("safecall "):
            commands.append(shlex.split(line.split("  #", 1)[0].strip())[1:])
    return commands


def test_readme_using_it_speaks_korean_under_c_utf8(tmp_path, clock, monkeypatch):
    monkeypatch.chdir(ROOT)  # "run from the repository": examples/roster.xlsx
    office = tmp_path / "office"
    cli = Cli(office, clock, {"LANG": "C.UTF-8"})
    cli.environ.pop("SAFECALL_LANG")
    commands = using_it_commands()
    assert commands[0][0] == "init" and len(commands) >= 10, commands
    allowed = allowed_latin() | {"weekly-safe-call", "safe-call", "simulated", "sqlite"}
    bad = []
    for args in commands:
        args = [str(office) if a == "~/office" else a for a in args]
        result = cli.runner.invoke(cli.app, args if args[0] == "init" else ["--config", str(office), *args])
        assert result.exit_code == 0, (args, result.output)
        if args[:2] == ["config", "show"]:  # the settings file's own keys and values, as they are typed in it
            continue
        text = result.output.replace(str(office), " ").replace(str(tmp_path), " ")
        for line in text.splitlines():
            words = [w for w in latin_words(line) if w not in allowed]
            if words or OPEN_PARTICLE.search(line):
                bad.append(f"safecall {' '.join(args[:3])}: {sorted(set(words))} in {line.strip()!r}")
    assert not bad, "English or open particles a Korean officer would meet:\n" + "\n".join(bad)
