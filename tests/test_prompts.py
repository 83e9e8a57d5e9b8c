"""Prompt audio for Asterisk from the flow's texts (issue 3, point 5)."""

from __future__ import annotations

import os
import shutil
import wave

import pytest

needs_tools = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")) and not os.environ.get("CI"),
    reason="espeak-ng and sox are not installed (.ci/run installs them)",
)


@needs_tools
def test_prompts_are_8khz_mono_wav_and_recorded_files_are_kept(cli):
    sounds = cli.root / "ivr" / "asterisk" / "sounds" / "safecall"
    sounds.mkdir(parents=True)
    recorded = sounds / "closing-thanks_well.wav"
    recorded.write_bytes(b"RIFF-recorded-by-the-office")
    output = cli("ivr", "prompts").output
    assert "kept" in output and "closing-thanks_well.wav" in output
    assert recorded.read_bytes() == b"RIFF-recorded-by-the-office"
    names = sorted(p.name for p in sounds.glob("*.wav"))
    assert names == ["closing-no_input.wav", "closing-not_due.wav", "closing-thanks_help.wav", "closing-thanks_well.wav",
                     "prompt-greeting.wav", "prompt-invalid.wav", "prompt-repeat.wav"]
    with wave.open(str(sounds / "prompt-greeting.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() / 8000 > 3  # a whole Korean sentence, not silence
    cli("ivr", "prompts", "--force")
    assert recorded.read_bytes() != b"RIFF-recorded-by-the-office"


def test_missing_tools_are_named(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    output = cli("ivr", "prompts", ok=False).output
    assert "espeak-ng and sox not installed" in output and "prompt-greeting" in output
