"""Prompt audio for Asterisk (8 kHz mono WAV) from the flow's Korean texts, with espeak-ng and sox."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from safecall.errors import ConfigError
from safecall.ivr import IvrFlow


def sounds_dir(ivr_dir: Path) -> Path:
    """Where `safecall ivr prompts` writes the audio (copied to Asterisk's sounds/safecall)."""
    return ivr_dir / "asterisk" / "sounds" / "safecall"


def build_prompts(flow: IvrFlow, out_dir: Path, *, force: bool = False, which: Callable[[str], str | None] = shutil.which) -> tuple[list[Path], list[Path]]:
    """(written, kept): files an admin recorded are kept unless `force`."""
    espeak, sox = which("espeak-ng"), which("sox")
    missing = [name for name, path in (("espeak-ng", espeak), ("sox", sox)) if not path]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not installed (Debian: apt-get install espeak-ng sox); "
                          f"or put recorded 8 kHz mono WAV files named {', '.join(sorted(flow.texts()))} in {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    voice = flow.language.split("-")[0]
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in sorted(flow.texts().items()):
            target = out_dir / f"{name}.wav"
            if target.exists() and not force:
                kept.append(target)
                continue
            spoken = Path(scratch) / f"{name}.wav"
            _run([espeak, "-v", voice, "-s", "150", "-w", str(spoken), text])
            _run([sox, str(spoken), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(target)])
            written.append(target)
    return written, kept


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ConfigError(f"{Path(command[0]).name} failed: {result.stderr.strip() or result.returncode}")
