"""Prompt audio for Asterisk: the office's recordings first (sox), espeak-ng only for prompts nobody recorded.

Asterisk plays 8 kHz mono signed-linear audio (`NAME.wav`); where a recording is wideband it also gets
`NAME.sln16` (16 kHz raw), which Asterisk prefers on wideband calls. Recordings are named after the flow's
audio names (`prompt-greeting.wav`) or their keys (`greeting.mp3`); `greeting.slow.wav` and `greeting.loud.wav`
are the slow and loud variants (written as `prompt-greeting-slow.wav`), played to people whose voice style
(roster column 음성) asks for them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from safecall.errors import ConfigError, InputError
from safecall.ivr import IvrFlow

RECORDING_SUFFIXES = (".wav", ".mp3")
VARIANTS = ("slow", "loud")
NARROWBAND, WIDEBAND = 8000, 16000
MIN_SECONDS, MAX_SECONDS = 0.5, 60.0  # shorter is a slip of the recorder; longer, no one waits for the key
SILENT_PEAK = 0.01  # of full scale: a recording whose loudest sample is below this is silence


def sounds_dir(ivr_dir: Path) -> Path:
    """Where `safecall ivr prompts` writes the audio (copied to Asterisk's sounds/safecall)."""
    return ivr_dir / "asterisk" / "sounds" / "safecall"


@dataclass(frozen=True)
class PromptsDone:
    recorded: list[Recording]  # converted from the office's recordings
    written: list[Path]  # spoken by espeak-ng
    kept: list[Path]  # already there


def prepare_prompts(
    flow: IvrFlow,
    out_dir: Path,
    *,
    from_dir: Path | None = None,
    force: bool = False,
    which: Callable[[str], str | None] = shutil.which,
) -> PromptsDone:
    """`safecall ivr prompts`: the recordings in `from_dir` first, espeak-ng for the prompts nobody recorded."""
    recorded = import_recordings(flow, from_dir, out_dir, which=which) if from_dir is not None else []
    written, kept = build_prompts(
        flow, out_dir, force=force, skip={r.name for r in recorded if r.variant is None}, which=which
    )
    return PromptsDone(recorded, written, kept)


def build_prompts(
    flow: IvrFlow,
    out_dir: Path,
    *,
    force: bool = False,
    skip: AbstractSet[str] = frozenset(),
    which: Callable[[str], str | None] = shutil.which,
) -> tuple[list[Path], list[Path]]:
    """Speak the flow's texts with espeak-ng: (written, kept). Files already there are kept unless `force`;
    names in `skip` (just recorded) are left alone."""
    todo = {
        name: text
        for name, text in flow.texts().items()
        if name not in skip and (force or not (out_dir / f"{name}.wav").exists())
    }
    kept = sorted(out_dir / f"{name}.wav" for name in flow.texts() if name not in skip and name not in todo)
    if not todo:
        return [], kept
    espeak, sox = which("espeak-ng"), which("sox")
    missing = [name for name, path in (("espeak-ng", espeak), ("sox", sox)) if not path]
    if missing or espeak is None or sox is None:
        raise ConfigError(
            f"{' and '.join(missing)} not installed (Debian: apt-get install espeak-ng sox); "
            f"or record {', '.join(sorted(todo))} and give them with --from DIR"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    voice = flow.language.split("-")[0]
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in sorted(todo.items()):
            spoken = Path(scratch) / f"{name}.wav"
            _run([espeak, "-v", voice, "-s", "150", "-w", str(spoken), text])
            _convert(sox, spoken, out_dir / name, wideband=False)
            (out_dir / f"{name}.sln16").unlink(missing_ok=True)  # a recording's wideband take must not outplay it
            written.append(out_dir / f"{name}.wav")
    return written, kept


@dataclass(frozen=True)
class Recording:
    source: Path
    name: str  # the flow's audio name, e.g. prompt-greeting
    variant: str | None  # slow, loud or None
    seconds: float = 0.0
    rate: int = 0

    @property
    def wideband(self) -> bool:
        return self.rate >= WIDEBAND

    @property
    def target(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


def import_recordings(
    flow: IvrFlow, from_dir: Path, out_dir: Path, *, which: Callable[[str], str | None] = shutil.which
) -> list[Recording]:
    """Convert every recording in `from_dir` for Asterisk into `out_dir`; all or nothing.

    Every file is checked first (a name of the flow, one file per name, a length of MIN..MAX seconds, not
    silence); one problem and nothing is written, each problem named by its file.
    """
    sox = which("sox")
    if not sox:
        raise ConfigError("sox not installed (Debian: apt-get install sox libsox-fmt-mp3)")
    if not from_dir.is_dir():
        raise InputError(f"{from_dir}: no such folder")
    problems: list[str] = []
    found = _name_recordings(flow, from_dir, problems)
    checked = []
    for recording in found:
        try:
            seconds, rate, peak = _measure(sox, recording.source)
        except ConfigError as exc:
            problems.append(f"{recording.source.name}: sox cannot read it ({exc})")
            continue
        if peak < SILENT_PEAK:
            problems.append(f"{recording.source.name}: silence (the loudest sample is {peak:.1%} of full scale)")
        elif seconds < MIN_SECONDS:
            problems.append(f"{recording.source.name}: too short ({seconds:.2f} s; at least {MIN_SECONDS} s)")
        elif seconds > MAX_SECONDS:
            problems.append(f"{recording.source.name}: too long ({seconds:.0f} s; at most {MAX_SECONDS:.0f} s)")
        checked.append(Recording(recording.source, recording.name, recording.variant, seconds, rate))
    if not found and not problems:
        problems.append(
            f"no recordings ({', '.join(RECORDING_SUFFIXES)}) named after the flow's prompts "
            f"({', '.join(sorted(flow.texts()))})"
        )
    if problems:
        raise InputError(f"{from_dir}: the recordings were not imported", problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as scratch:  # converted aside, then moved in together
        for recording in checked:
            _convert(sox, recording.source, Path(scratch) / recording.target, wideband=recording.wideband)
        for recording in checked:
            (out_dir / f"{recording.target}.sln16").unlink(missing_ok=True)  # an older wideband take must not play
            for converted in Path(scratch).glob(f"{recording.target}.*"):
                converted.replace(out_dir / converted.name)
    return checked


_VARIANT = re.compile(rf"^(?P<base>.+)\.(?P<variant>{'|'.join(VARIANTS)})$")


def _name_recordings(flow: IvrFlow, from_dir: Path, problems: list[str]) -> list[Recording]:
    """The recordings in `from_dir` by the audio name and variant they are for."""
    names = flow.texts()
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(name.split("-", 1)[1], []).append(name)  # prompt-greeting -> greeting
    found: dict[tuple[str, str | None], Path] = {}
    for path in sorted(p for p in from_dir.iterdir() if p.suffix.lower() in RECORDING_SUFFIXES):
        stem, variant = path.stem, None
        if match := _VARIANT.match(stem):
            stem, variant = match["base"], match["variant"]
        if stem in names:
            name = stem
        elif len(by_key.get(stem, [])) == 1:
            name = by_key[stem][0]
        elif stem in by_key:
            problems.append(
                f"{path.name}: {stem!r} is both {' and '.join(by_key[stem])}: name the file after one of them"
            )
            continue
        else:
            problems.append(
                f"{path.name}: the flow {flow.name!r} has no prompt or closing {stem!r} "
                f"(names: {', '.join(sorted(names))})"
            )
            continue
        if (name, variant) in found:
            problems.append(f"{path.name}: {found[name, variant].name} is a recording of the same prompt; keep one")
            continue
        found[name, variant] = path
    return [Recording(path, name, variant) for (name, variant), path in found.items()]


def _measure(sox: str, path: Path) -> tuple[float, int, float]:
    """(seconds, sample rate, peak as a fraction of full scale)."""
    rate = int(float(_run([sox, "--i", "-r", str(path)]).strip()))
    stat = _run([sox, str(path), "-n", "stat"], output="stderr")
    values = dict(line.split(":", 1) for line in stat.splitlines() if ":" in line)

    def value(key: str) -> float:
        return float(values[key].strip())

    return value("Length (seconds)"), rate, max(abs(value("Maximum amplitude")), abs(value("Minimum amplitude")))


def _convert(sox: str, source: Path, target_stem: Path, *, wideband: bool) -> None:
    """`target_stem`.wav at 8 kHz mono 16-bit; with `wideband`, also `target_stem`.sln16 (16 kHz raw)."""
    mono = ["-c", "1", "-b", "16", "-e", "signed-integer"]
    _run([sox, str(source), "-r", str(NARROWBAND), *mono, f"{target_stem}.wav"])
    if wideband:
        _run([sox, str(source), "-r", str(WIDEBAND), *mono, "-t", "raw", f"{target_stem}.sln16"])


def _run(command: list[str], output: str = "stdout") -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ConfigError(f"{Path(command[0]).name} failed: {result.stderr.strip() or result.returncode}")
    return result.stdout if output == "stdout" else result.stderr
