"""Prompt audio for Asterisk from the flow's texts (issue 3, point 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
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
    assert names == [
        "closing-help_message_thanks.wav",
        "closing-no_input.wav",
        "closing-not_due.wav",
        "closing-thanks_help.wav",
        "closing-thanks_well.wav",
        "prompt-greeting.wav",
        "prompt-help_message.wav",
        "prompt-help_no_officer.wav",
        "prompt-help_transfer.wav",
        "prompt-invalid.wav",
        "prompt-repeat.wav",
    ]
    with wave.open(str(sounds / "prompt-greeting.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() / 8000 > 3  # a whole Korean sentence, not silence
    cli("ivr", "prompts", "--force")
    assert recorded.read_bytes() != b"RIFF-recorded-by-the-office"


def test_missing_tools_are_named(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    output = cli("ivr", "prompts", ok=False).output
    assert "espeak-ng and sox not installed" in output and "prompt-greeting" in output


GREETING = "안녕하세요. 구청 안심콜입니다. 잘 지내고 계시면 1번을 눌러 주세요."


def speak(text: str, path, words_per_minute: int = 150) -> None:
    """A real recording, as espeak-ng makes it (22.05 kHz mono WAV)."""
    subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", str(words_per_minute), "-w", str(path), text], check=True, capture_output=True
    )


def sox(*args) -> None:
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


def seconds_of(path) -> float:
    return float(subprocess.run(["sox", "--i", "-D", str(path)], check=True, capture_output=True, text=True).stdout)


def wav_format(path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as audio:
        return (
            audio.getframerate(),
            audio.getnchannels(),
            audio.getsampwidth(),
            audio.getnframes() / audio.getframerate(),
        )


@needs_tools
def test_recordings_are_converted_for_asterisk_and_espeak_ng_speaks_only_the_rest(cli, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    speak(GREETING, recordings / "greeting.wav", 130)  # wideband (22.05 kHz)
    speak(GREETING, recordings / "greeting.slow.wav", 90)
    speak("확인되었습니다. 감사합니다.", tmp_path / "thanks.wav")
    sox(tmp_path / "thanks.wav", recordings / "closing-thanks_well.mp3")  # an MP3, by its full audio name
    sox(recordings / "greeting.wav", "-r", 8000, recordings / "repeat.loud.wav", "vol", 1.5)  # narrowband
    output = cli("ivr", "prompts", "--from", str(recordings)).output
    sounds = cli.root / "ivr" / "asterisk" / "sounds" / "safecall"

    for name, source in (
        ("prompt-greeting", "greeting.wav"),
        ("prompt-greeting-slow", "greeting.slow.wav"),
        ("closing-thanks_well", "closing-thanks_well.mp3"),
        ("prompt-repeat-loud", "repeat.loud.wav"),
    ):
        rate, channels, width, seconds = wav_format(sounds / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2), name
        assert abs(seconds - seconds_of(recordings / source)) < 0.1, (name, seconds)  # the recording, not espeak-ng's
        assert f"recorded {sounds / name}.wav from {source}" in output
    # Wideband sources get Asterisk's 16 kHz signed linear too; the 8 kHz one does not.
    for name in ("prompt-greeting", "prompt-greeting-slow", "closing-thanks_well"):
        assert abs((sounds / f"{name}.sln16").stat().st_size / 2 / 16000 - wav_format(sounds / f"{name}.wav")[3]) < 0.01
    assert not (sounds / "prompt-repeat-loud.sln16").exists()
    assert wav_format(sounds / "prompt-greeting-slow.wav")[3] > wav_format(sounds / "prompt-greeting.wav")[3] + 1
    # The prompts nobody recorded are spoken by espeak-ng.
    for name in ("prompt-repeat", "prompt-invalid", "closing-thanks_help", "closing-no_input", "closing-not_due"):
        assert f"wrote {sounds / name}.wav (espeak-ng: no recording given)" in output
        assert wav_format(sounds / f"{name}.wav")[:3] == (8000, 1, 2)
    assert not (sounds / "prompt-repeat.sln16").exists()

    # A later run keeps what is there; --force speaks over espeak-ng's and the recordings alike,
    # and drops their wideband take.
    again = cli("ivr", "prompts").output
    assert f"kept  {sounds / 'prompt-greeting'}.wav" in again and "wrote" not in again
    cli("ivr", "prompts", "--force")
    assert not (sounds / "prompt-greeting.sln16").exists()


@needs_tools
def test_bad_recordings_are_each_named_and_nothing_is_written(cli, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    speak(GREETING, recordings / "greeting.wav")
    sox(recordings / "greeting.wav", recordings / "greeting.mp3")  # the same prompt twice
    sox("-n", "-r", 16000, "-c", 1, recordings / "invalid.wav", "trim", 0, 2)  # silence
    sox(recordings / "greeting.wav", recordings / "no_input.wav", "trim", 0, 0.2)
    sox("-n", "-r", 8000, "-c", 1, recordings / "thanks_help.wav", "synth", 61, "sine", 440)
    speak("안녕하세요", recordings / "hello.wav")
    speak("네", recordings / "repeat.quiet.wav")  # not a variant
    result = cli("ivr", "prompts", "--from", str(recordings), ok=False)
    assert result.exit_code == 1
    text = result.output.replace("\n  ", " ")
    assert (
        "greeting.wav: greeting.mp3 is a recording of the same prompt" in text
        or "greeting.mp3: greeting.wav is a recording of the same prompt" in text
    )
    assert "invalid.wav: silence" in text
    assert "no_input.wav: too short (0.20 s" in text
    assert "thanks_help.wav: too long (61 s" in text
    assert "hello.wav: the flow 'safe-call' has no prompt or closing 'hello'" in text
    assert "repeat.quiet.wav: the flow 'safe-call' has no prompt or closing 'repeat.quiet'" in text
    sounds = cli.root / "ivr" / "asterisk" / "sounds" / "safecall"
    assert not sounds.exists() or not any(sounds.iterdir())
