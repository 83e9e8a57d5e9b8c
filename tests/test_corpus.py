"""The bad-input corpus (issue 6, point 4): each file gives a clear error and changes nothing."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import tomllib
import zipfile
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from conftest import person_row, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live import free_port
from recording_sink import RecordingSink
from sqlmodel import select
from twilio.request_validator import RequestValidator

from safecall.clock import SystemClock
from safecall.ivr import load_flow
from safecall.settings import defaults_root
from safecall.store import Person, Signal
from safecall.telephony.asterisk.ami import AmiConnection, _PatchedClient
from safecall.telephony.asterisk.channels import ChannelWatch, channel_id_for
from safecall.telephony.asterisk.fastagi import FastAgiServer, IvrSessions
from safecall.telephony.twilio.webhooks import WebhookServer, create_webhook_app

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
GENERATED_EXPECTED = EXPECTED.pop("generated")


def of_kind(kind: str) -> list[str]:
    return sorted(path for path in EXPECTED if path.startswith(kind + "/"))


def test_the_corpus_has_at_least_thirty_files_and_each_is_listed():
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.name != "expected.toml"}
    assert files == set(EXPECTED) and len(files) >= 30


def snapshot(cli):
    with cli.db().session() as session:
        return [(p.person_key, p.phone, p.updated_at) for p in session.exec(select(Person).order_by(Person.id))]


@pytest.mark.parametrize("name", of_kind("rosters"))
def test_bad_rosters(cli, tmp_path, name):
    cli("recipients", "import", str(write_csv(tmp_path / "base.csv", [person_row("기존", "010-0123-9999")])))
    before = snapshot(cli)
    result = cli("recipients", "import", str(CORPUS / name), ok=False)
    if EXPECTED[name] == "OK":  # formulas are text: stored as they are, neutralised whenever written out
        assert result.exit_code == 0, result.output
        assert "=HYPERLINK" in cli("recipients", "list").output
        return
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert EXPECTED[name] in result.output.replace("\n  ", " ") or EXPECTED[name] in result.output
    assert snapshot(cli) == before


def signal_snapshot(cli):
    with cli.db().session() as session:
        return [(s.person_id, s.day, s.kind, s.score) for s in session.exec(select(Signal).order_by(Signal.id))]


@pytest.mark.parametrize("name", of_kind("signals"))
def test_bad_signal_files(cli, tmp_path, name):
    cli("recipients", "import", str(write_csv(tmp_path / "base.csv", [person_row("기존", "010-0123-9999")])))
    cli("signals", "import", str(signal_file(tmp_path / "first.csv")))
    before = signal_snapshot(cli)
    result = cli("signals", "import", str(CORPUS / name), ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert EXPECTED[name] in result.output
    assert signal_snapshot(cli) == before


def signal_file(path: Path, extra: str = "") -> Path:
    path.write_text("전화번호,일자,종류,점수\n010-0123-9999,2026-11-20,power,0.9\n" + extra, encoding="utf-8")
    return path


MiB = 1024 * 1024


def one_gib_cell(path: Path, header: list[str]) -> Path:
    """A workbook of a few MiB whose one shared string unpacks to 1 GiB (written in chunks, never held whole)."""
    cells = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{title}</t></is></c>' for i, title in enumerate(header)
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(
            "xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet><sheetData><row r="1">{cells}</row><row r="2">'
            f'<c r="A2" t="s"><v>0</v></c></row></sheetData></worksheet>',
        )
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(b"<sst><si><t>")
            block = b"A" * MiB
            for _ in range(1024):
                part.write(block)
            part.write(b"</t></si></sst>")
    return path


def fifty_mib_line(path: Path, header: str) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(header + "\r\n" + "x" * (50 * MiB) + "\r\n")
    return path


def written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ROSTER_HEADER = "성명,전화번호,주소,행정동,생년월일"
GENERATED = {
    "rosters/a-folder": lambda path: path.mkdir() or path,
    "rosters/missing.xlsx": lambda path: path,
    "rosters/fifty-mib-csv-line.csv": lambda path: fifty_mib_line(path, ROSTER_HEADER),
    "rosters/one-gib-cell.xlsx": lambda path: one_gib_cell(path, ROSTER_HEADER.split(",")),
    "rosters/too-many-rows.csv": lambda path: written(
        path, ROSTER_HEADER + "\n" + "가,010-0123-0001,주소,사직동,1945-03-01\n" * 200_001
    ),
    "rosters/unclosed-quote.csv": lambda path: written(
        path, ROSTER_HEADER + '\n가,"010\n' + ("x" * 20_000 + "\n") * 10
    ),
    "signals/fifty-mib-csv-line.csv": lambda path: fifty_mib_line(path, "전화번호,일자,종류,점수"),
    "signals/one-gib-cell.xlsx": lambda path: one_gib_cell(path, ["전화번호", "일자", "종류", "점수"]),
}


def test_each_generated_input_is_made_and_listed():
    assert set(GENERATED) == set(GENERATED_EXPECTED)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_bad_inputs(cli, tmp_path, name):
    """Inputs that once aborted the process or gave a traceback: a clear error naming the file, and nothing changed."""
    cli("recipients", "import", str(write_csv(tmp_path / "base.csv", [person_row("기존", "010-0123-9999")])))
    cli("signals", "import", str(signal_file(tmp_path / "first.csv")))
    before = snapshot(cli), signal_snapshot(cli)
    kind, file_name = name.split("/")
    path = GENERATED[name](tmp_path / file_name)
    result = cli("recipients" if kind == "rosters" else "signals", "import", str(path), ok=False)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and f"error: {path}" in result.output
    assert GENERATED_EXPECTED[name] in result.output
    assert (snapshot(cli), signal_snapshot(cli)) == before


@pytest.mark.parametrize("name", of_kind("config"))
def test_bad_settings(cli, name):
    shutil.copy(CORPUS / name, cli.root / "config" / "safecall.toml")
    result = cli("config", "show", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert EXPECTED[name] in result.output


@pytest.mark.parametrize("name", of_kind("campaigns"))
def test_bad_campaigns(cli, name):
    shutil.copy(CORPUS / name, cli.root / "campaigns" / "weekly-safe-call.toml")
    result = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert result.exit_code == 1 and EXPECTED[name] in result.output
    assert "weekly-safe-call.toml" in result.output
    launch = cli("campaign", "launch", "weekly-safe-call", "--no-dial", ok=False)
    assert launch.exit_code == 1 and "Launched" not in launch.output


@pytest.mark.parametrize("name", of_kind("ivr"))
def test_bad_ivr_flows(cli, name):
    shutil.copy(CORPUS / name, cli.root / "ivr" / "safe-call.toml")
    result = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert result.exit_code == 1 and EXPECTED[name] in result.output and "safe-call.toml" in result.output


def Recorder() -> RecordingSink:
    return RecordingSink(load_flow(defaults_root() / "ivr", "safe-call"))


@pytest.fixture(scope="module")
def webhooks():
    recorder, port = Recorder(), free_port()
    app = create_webhook_app(
        public_base_url="https://safecall.example.org",
        auth_token="corpus-token",
        sink=recorder,
        now=SystemClock().now,
        on_event=lambda e: recorder.keys.append(("event", e)),
    )
    server = WebhookServer(app, "127.0.0.1", port).start()
    yield recorder, port
    server.stop()


@pytest.mark.parametrize("name", of_kind("webhooks"))
def test_forged_and_malformed_webhooks(webhooks, name):
    recorder, port = webhooks
    spec = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    public = "https://safecall.example.org" + spec["path"]
    params = spec.get("params", {})
    validator = RequestValidator("corpus-token")
    signature = {
        "none": None,
        "forged": "bm90IGEgc2lnbmF0dXJl",
        "other-params": validator.compute_signature(public, {**params, "Digits": "2"}),
        "other-url": validator.compute_signature(public.replace("TOKEN", "OTHER"), params),
    }[spec["signature"]]
    body = spec["raw_body"].encode() if "raw_body" in spec else urlencode(params).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **({"X-Twilio-Signature": signature} if signature else {}),
    }
    with pytest.raises(HTTPError) as refused:
        urlopen(Request(f"http://127.0.0.1:{port}{spec['path']}", data=body, headers=headers), timeout=5)
    assert refused.value.code == int(EXPECTED[name])
    assert recorder.keys == []


def serve_ami(packets: list[bytes]) -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _ = server.accept()
        conn.sendall(b"Asterisk Call Manager/13.0.0\r\n")
        conn.recv(4096)  # Login
        conn.sendall(b"Response: Success\r\nActionID: " + b"X" + b"\r\nMessage: Authentication accepted\r\n\r\n")
        for packet in packets:
            conn.sendall(packet)
        conn.sendall(b"Event: UserEvent\r\nUserEvent: AfterTheBadPacket\r\n\r\n")
        time.sleep(1)
        conn.close()

    threading.Thread(target=run, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.parametrize("name", of_kind("ami"))
def test_malformed_ami_packets_are_skipped_and_the_link_lives_on(name, monkeypatch):
    # The login response needs our ActionID: answer whatever id comes in.
    monkeypatch.setattr(_PatchedClient, "next_action_id", lambda self: "X")
    server, port = serve_ami([(CORPUS / name).read_bytes()])
    seen = []
    ami = AmiConnection(
        "127.0.0.1", port, "u", "s", on_event=lambda e: seen.append(e.keys.get("UserEvent")), ping_interval=60
    )
    try:
        ami.connect()
        deadline = time.monotonic() + 3
        while "AfterTheBadPacket" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "AfterTheBadPacket" in seen
    finally:
        ami.close()
        server.close()


def agi_session(data: str) -> list:
    """`data` as a FastAGI session for an answered call placed for the token TOKEN; the keypresses it recorded."""
    recorder = Recorder()
    watch = ChannelWatch()
    watch.on_event(
        "Newstate",
        {"Uniqueid": channel_id_for("TOKEN"), "Channel": "Local/1001@callee-00000009;1", "ChannelState": "6"},
    )
    server = FastAgiServer("127.0.0.1", 0, IvrSessions(recorder, SystemClock().now, watch, answer_wait_seconds=0.1))
    ours, theirs = socket.socketpair()
    theirs.sendall(data.encode("utf-8", "replace"))
    theirs.shutdown(socket.SHUT_WR)
    ours.settimeout(5)
    server.serve_call(ours)  # must return, whatever came in
    theirs.close()
    server.stop()
    return recorder.keys


@pytest.mark.parametrize("name", of_kind("agi"))
def test_malformed_fastagi_input_records_nothing(name):
    assert agi_session((CORPUS / name).read_text(encoding="utf-8")) == []


# The environment of a session bound to its call, so that what follows it decides what is recorded.
BOUND = f"agi_arg_1: TOKEN\nagi_uniqueid: {channel_id_for('TOKEN')}\nagi_channel: Local/1001@callee-00000009;1\n\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40), max_size=8))
def test_fuzzed_fastagi_lines_never_crash_and_record_only_real_digits(lines):
    text = BOUND + "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    keys = agi_session(text)
    if keys:
        assert any(line.strip().startswith(("200 result=1", "200 result=2")) for line in lines)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzzed_ami_packets_never_escape_the_parser(data):
    client = _PatchedClient("127.0.0.1", 1, 1)
    client.add_event_listener(lambda event, source: None)
    client.fire_recv_pack(data.decode("utf-8", "replace"))  # must not raise
