"""The Asterisk trunk over real sockets on loopback, against a stand-in checked with the real recordings."""

from __future__ import annotations

import io
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from asterisk_standin import FIXTURES, SCENARIOS, AsteriskStandIn, CallRecord, Recording, agi_exchanges, split_packets
from conftest import HEADER, person_row, write_csv
from live import always_open, free_port, outcomes_by_name, run_live_campaign
from recording_sink import RecordingSink
from sqlmodel import select

from safecall.clock import SystemClock
from safecall.ivr import load_flow
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, MemberState, Person, RunMember
from safecall.telephony.asterisk.ami import AmiConnection
from safecall.telephony.asterisk.channels import ChannelWatch, channel_id_for
from safecall.telephony.asterisk.fastagi import CallerHungUp, FastAgiServer, IvrSessions, SocketAGI, caller_e164
from safecall.telephony.asterisk.trunk import failure_result

# ---- the recordings, parsed directly ----


def test_the_recordings_parse_into_the_expected_originate_outcomes():
    from asterisk.ami.event import Event

    expected = {
        "ami-ack.txt": ["4"],
        "ami-answered-no-key.txt": ["4"],
        "ami-no-answer.txt": ["3"],
        "ami-busy.txt": ["5"],
        "ami-congestion.txt": ["8"],
        "ami-fastagi-unreachable.txt": ["4"],
    }
    for name, reasons in expected.items():
        packets = split_packets((FIXTURES / name).read_bytes())
        assert packets[0] == b"Asterisk Call Manager/13.0.0"
        events = [Event.read(p.decode()) for p in packets if p.startswith(b"Event: ")]
        assert [e.keys["Reason"] for e in events if e.name == "OriginateResponse"] == reasons, name
    many = [
        Event.read(p.decode())
        for p in split_packets((FIXTURES / "ami-60-concurrent.txt").read_bytes())
        if p.startswith(b"Event: ")
    ]
    reasons = sorted(e.keys["Reason"] for e in many if e.name == "OriginateResponse")
    assert (reasons.count("4"), reasons.count("3"), reasons.count("5"), reasons.count("8")) == (49, 8, 1, 2)
    assert len(many) == 1965  # every Event packet of the recording parsed


def test_reason_and_cause_mapping():
    assert failure_result(3, 19) == "no_answer"
    assert failure_result(5, 0) == "busy"
    assert failure_result(8, 0) == "failed"
    assert failure_result(0, 1) == "invalid_number" and failure_result(8, 28) == "invalid_number"
    assert failure_result(None, 17) == "busy"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_stand_in_replays_the_recorded_bytes(scenario):
    """With the recording's own identifiers, the stand-in sends exactly the recorded packets."""
    ami_name, agi_name, number = SCENARIOS[scenario]
    stand_in = AsteriskStandIn({number: scenario}).start()
    try:
        with socket.create_connection(("127.0.0.1", stand_in.port), timeout=5) as sock:
            sock.sendall(
                b"Action: Login\r\nActionID: login-1\r\nUsername: safecall\r\nSecret: safecall-test-secret\r\n\r\n"
            )
            sock.sendall(
                f"Action: Originate\r\nActionID: attempt-{number}\r\nChannel: Local/{number}@callee\r\n"
                "Context: safecall-agi\r\n"
                f"Exten: s\r\nPriority: 1\r\nTimeout: 8000\r\nAsync: true\r\nChannelId: att-{number}\r\n"
                f"Variable: SAFECALL_ATTEMPT={number}\r\n\r\n".encode()
            )
            raw = (FIXTURES / ami_name).read_bytes()
            expected = raw[
                raw.index(b"\r\n\r\n", raw.index(b"Event: SuccessfulAuth")) + 4 : raw.index(b"Response: Goodbye")
            ]
            if agi_name:  # no FastAGI server here: after the answer comes the recorded unreachable-AGI ending
                cut = expected.index(b"\r\n\r\n", expected.index(b"Event: OriginateResponse")) + 4
                unreachable = (FIXTURES / "ami-fastagi-unreachable.txt").read_bytes()
                tail = unreachable[
                    unreachable.index(b"\r\n\r\n", unreachable.index(b"Event: OriginateResponse"))
                    + 4 : unreachable.index(b"Response: Goodbye")
                ]
                expected = expected[:cut] + tail.replace(b"att-1002", f"att-{number}".encode()).replace(
                    b"1002", number.encode()
                )
            greeting = (FIXTURES / "ami-ack.txt").read_bytes()  # the stand-in greets as in this recording
            login = greeting[: greeting.index(b"\r\n\r\n", greeting.index(b"Event: SuccessfulAuth")) + 4]
            received = b""
            deadline = time.monotonic() + 5
            while len(received) < len(login) + len(expected) and time.monotonic() < deadline:
                received += sock.recv(65536)
    finally:
        stand_in.stop()
    assert received == login + expected


def test_socket_agi_handles_the_bare_hangup_line_and_511():
    env, exchanges = agi_exchanges("agi-caller-hung-up.txt")
    replies = "\n".join(env) + "\n" + "\n".join(line for _, _, reply in exchanges for line in reply) + "\n"
    agi = SocketAGI(io.StringIO(replies))
    assert agi.env["agi_arg_1"] == "6001"
    sent = io.StringIO()
    agi.stdout = sent
    assert agi.answer() is None
    with pytest.raises(CallerHungUp):
        agi.get_data("beep", 1500, 1)  # 200 result=-1
    agi.hung_up = False
    with pytest.raises(CallerHungUp, match="511|dead channel"):
        agi.get_data("beep", 1500, 1)  # HANGUP, then 511
    assert agi.hung_up


# ---- the trunk, end to end ----

SCRIPTS = {
    "01001230001": "ack",
    "01001230002": "no_key",
    "01001230003": "no_answer",
    "01001230004": "busy",
    "01001230005": "congestion",
    "01001230006": "help",
    "01001230007": "hangup",
}


def asterisk_trunks(ami_port: int, agi_port: int, extra: str = "") -> str:
    return f"""default = "pbx"
[trunks.pbx]
type = "asterisk"
ami_host = "127.0.0.1"
ami_port = {ami_port}
ami_username = "safecall"
ami_secret = {{ env = "TEST_AMI_SECRET" }}
channel = "Local/{{number}}@callee"
number_format = "national"
channels = 4
calls_per_second = 20
context = "safecall-agi"
fastagi_listen = "127.0.0.1:{agi_port}"
ping_interval_seconds = 0.2
{extra}"""


@pytest.fixture
def pbx(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn(dict(SCRIPTS), fastagi=("127.0.0.1", agi_port)).start()
    cli.set_trunks(asterisk_trunks(stand_in.port, agi_port))
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row(name, "010-0123-000" + str(i))
                    for i, name in enumerate(["응답", "무입력", "무응답", "통화중", "혼잡", "도움", "끊음"], start=1)
                ],
            )
        ),
    )
    yield stand_in, agi_port
    stand_in.stop()


AMI_ENV = {"TEST_AMI_SECRET": "safecall-test-secret"}


def run_campaign(cli, stand_in, faults=None):
    return run_live_campaign(cli, AMI_ENV, faults)


def test_the_stand_in_keeps_ids_that_contain_the_recorded_number():
    # Channel ids and tokens are random: one containing the recording's number ("2001") must reach the trunk whole,
    # or that call's events go unmatched and it waits out its write-off
    # (seen as a rare failing run that also took 270 s longer).
    ami_name, _, recorded = SCENARIOS["hangup"]
    call = CallRecord("01001230007", f"sc-65143cfea{recorded}5421bfcdbca", f"token{recorded}x", "hangup")
    packets = [
        AsteriskStandIn._rewrite(packet, recorded, call, f"sc-{recorded}-7") for packet in Recording.load(ami_name).call
    ]
    uniqueids = {
        line.split(": ", 1)[1]
        for packet in packets
        for line in packet.decode().split("\r\n")
        if line.startswith("Uniqueid: ")
    }
    assert uniqueids == {call.channel_id, call.channel_id + ";2"}
    assert any(f"ActionID: sc-{recorded}-7".encode() in packet for packet in packets)
    assert all(
        recorded.encode()
        not in packet.replace(call.channel_id.encode(), b"")
        .replace(f"sc-{recorded}-7".encode(), b"")
        .replace(call.token.encode(), b"")
        for packet in packets
    )  # the number itself is this call's everywhere


def test_a_weekly_campaign_through_the_asterisk_stand_in(cli, pbx):
    stand_in, _ = pbx
    services, dialer = run_campaign(cli, stand_in)
    members, attempts = outcomes_by_name(services)
    assert members == {
        "응답": "acknowledged",
        "도움": "help_requested",
        "무입력": "unreachable",
        "무응답": "unreachable",
        "통화중": "unreachable",
        "혼잡": "unreachable",
        "끊음": "unreachable",
    }
    assert attempts["응답"] == ["acknowledged"]
    assert attempts["무입력"] == ["answered_no_key"] * 4
    assert attempts["끊음"] == ["answered_no_key"] * 4
    assert attempts["무응답"] == ["no_answer"] * 4
    assert attempts["통화중"] == ["busy"] * 4
    assert attempts["혼잡"] == ["failed"] * 4
    # What went over the wire: an async Originate carrying the attempt token, never a guessable id.
    originate = next(a for a in stand_in.actions if a.get("Action") == "Originate")
    assert (
        originate["Async"] == "true"
        and originate["Channel"].startswith("Local/010")
        and originate["Context"] == "safecall-agi"
    )
    assert originate["Variable"].startswith("SAFECALL_ATTEMPT=") and len(originate["Variable"]) > 30
    ack_call = next(c for c in stand_in.calls if c.scenario == "ack")
    sent = [line for side, line in ack_call.agi_transcript if side == ">"]
    assert sent[0] == "ANSWER" and sent[1].startswith("GET DATA safecall/prompt-greeting 5000 1")
    assert sent[2:] == [
        'STREAM FILE safecall/closing-thanks_well ""',
        'SET VARIABLE SAFECALL_RESULT "acknowledged"',
        "HANGUP",
    ]
    ids = [a["ActionID"] for a in stand_in.actions]
    assert len(ids) == len(set(ids))
    visits = cli("visits", "list", "--date", str(services.today() + timedelta(days=1))).output
    for name in ("무입력", "무응답", "통화중", "혼잡", "끊음"):
        assert name in visits
    assert "│ 응답 " not in visits and "도움" not in visits


def test_an_unreachable_fastagi_server_never_counts_as_acknowledged(cli, pbx):
    stand_in, agi_port = pbx
    stand_in.fastagi = ("127.0.0.1", free_port())  # Asterisk points at a port nobody listens on
    services, _ = run_campaign(cli, stand_in)
    members, attempts = outcomes_by_name(services)
    assert members["응답"] == "unreachable"
    assert attempts["응답"] == ["answered_no_key"] * 4


def link_cutter(stand_in, times: int, every: float):
    """A fault for run_campaign: drop every AMI connection `times` times, `every` seconds apart."""

    def cut_links():
        for _ in range(times):
            time.sleep(every)
            stand_in.drop_connections()

    return cut_links


def test_the_campaign_survives_ami_links_dropped_mid_campaign(cli, pbx):
    stand_in, _ = pbx

    services, dialer = run_campaign(cli, stand_in, faults=link_cutter(stand_in, times=3, every=0.15))
    members, _ = outcomes_by_name(services)
    assert members["응답"] in ("acknowledged",)
    assert members["도움"] == "help_requested"
    assert all(state in ("unreachable", "acknowledged", "help_requested") for state in members.values())
    assert dialer.trunk.ami.reconnects >= 1


def test_ami_adapter_survives_idle_links_and_failing_listeners():
    stand_in = AsteriskStandIn({}).start()
    seen = []

    def listener(event):
        seen.append(event.name)
        raise RuntimeError("a bug in a listener")

    try:
        # A 0.5 s socket timeout: the library's reader would die after 0.5 s of quiet; the adapter's must not.
        ami = AmiConnection(
            "127.0.0.1",
            stand_in.port,
            "safecall",
            "safecall-test-secret",
            on_event=listener,
            ping_interval=30,
            timeout=0.5,
        )
        ami.connect()
        deadline = time.monotonic() + 3
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == ["FullyBooted", "SuccessfulAuth"]  # the listener raised on the first, and events still flowed
        time.sleep(1.0)  # an idle line, twice the socket timeout
        ami.timeout = 10  # from here on, answers on a busy machine may be slow: only the link's survival was timed
        assert ami.ping()
        results = []
        threads = [threading.Thread(target=lambda: results.append(ami.ping())) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 20
        ami.close()
    finally:
        stand_in.stop()


def test_a_reconnect_whose_login_meets_a_dropped_socket_is_tried_again(monkeypatch):
    # Seen as a rare hang: the PBX cut the new connection as the Login went out, the OSError ended the supervisor
    # thread, and the link never came back (the dialer waited on a trunk that was never ready again).
    from safecall.telephony.asterisk.ami import _PatchedClient

    stand_in = AsteriskStandIn({}).start()
    ami = AmiConnection(
        "127.0.0.1",
        stand_in.port,
        "safecall",
        "safecall-test-secret",
        on_event=lambda e: None,
        ping_interval=0.1,
        max_backoff=0.2,
    )
    sends = _PatchedClient.send
    failures = []

    def cut_at_login(client, pack):
        if "Action: Login" in str(pack) and not failures:
            failures.append(pack)
            raise ConnectionResetError(104, "Connection reset by peer")
        sends(client, pack)

    try:
        ami.connect()
        monkeypatch.setattr(_PatchedClient, "send", cut_at_login)
        stand_in.drop_connections()
        deadline = time.monotonic() + 10
        while ami.reconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert failures and ami.reconnects == 1 and ami.ping()
    finally:
        ami.close()
        stand_in.stop()


def test_wrong_secret_or_port_is_said_plainly():
    from safecall.errors import TrunkError

    stand_in = AsteriskStandIn({}).start()
    try:
        with pytest.raises(TrunkError, match="login refused for user 'safecall'"):
            AmiConnection("127.0.0.1", stand_in.port, "safecall", "wrong", on_event=print).connect()
    finally:
        stand_in.stop()
    with pytest.raises(TrunkError, match="cannot reach AMI at 127.0.0.1"):
        AmiConnection("127.0.0.1", free_port(), "safecall", "x", on_event=print).connect()


RECORDED_CHANNEL = "Local/1001@callee-00000009;1"  # agi_channel in agi-ack.txt


def recorded_env(token: str = "1001", **changes: str) -> list[str]:
    """agi-ack.txt's environment block, for the channel placed for `token` (as Asterisk tells it, see the stand-in)."""
    env, _ = agi_exchanges("agi-ack.txt")
    values = {"agi_arg_1": token, "agi_uniqueid": channel_id_for(token), "agi_channel": RECORDED_CHANNEL, **changes}
    return [f"{key}: {values[key]}" if key in values else line for line in env for key in [line.split(": ", 1)[0]]]


def answered(token: str = "1001", channel: str = RECORDED_CHANNEL) -> ChannelWatch:
    """What AMI tells of a call placed for `token` once answered (Newstate Up on its channel)."""
    watch = ChannelWatch()
    watch.on_event("Newstate", {"Uniqueid": channel_id_for(token), "Channel": channel, "ChannelState": "6"})
    return watch


def talk_to_fastagi(
    sink,
    replies: list[str],
    env: list[str] | None = None,
    watch: ChannelWatch | None = None,
    pbx: set[str] | None = None,
    source: str = "127.0.0.1",
    answer_wait: float = 0.2,
) -> list[str]:
    """Connect from `source` as Asterisk does, send the environment, answer each command in turn;
    what the server sent."""
    sessions = IvrSessions(
        sink, SystemClock().now, watch if watch is not None else answered(), answer_wait_seconds=answer_wait
    )
    server = FastAgiServer("127.0.0.1", 0, sessions, pbx_addresses=pbx).start()
    sent = []
    try:
        with socket.create_connection(server.address, timeout=5, source_address=(source, 0)) as sock:
            stream = sock.makefile("rw", encoding="utf-8", newline="\n")
            stream.write("\n".join(env or recorded_env()) + "\n\n")
            stream.flush()
            for reply in replies:
                line = stream.readline()
                if not line:
                    break
                sent.append(line.strip())
                stream.write(reply + "\n")
                stream.flush()
            else:
                sent.extend(
                    line.strip() for line in iter(stream.readline, "")
                )  # whatever the server says before it closes
    finally:
        server.stop()
    return sent


def test_fastagi_hangs_up_on_an_unknown_attempt(cli):
    class NoAttempts(RecordingSink):
        def record_keypress(self, *args):
            raise AssertionError("no keypress may be stored for an unknown attempt")

    assert talk_to_fastagi(NoAttempts(load_flow(cli.root / "ivr", "safe-call"), live=False), ["200 result=1"]) == [
        "HANGUP"
    ]


def configure_pbx(cli, stand_in_port: int, agi_port: int) -> None:
    cli.set_trunks(asterisk_trunks(stand_in_port, agi_port))


def test_trunk_check_passes_on_a_good_setup_and_names_each_problem(cli):
    from typer.testing import CliRunner

    from safecall.cli import create_app

    agi_port = free_port()
    stand_in = AsteriskStandIn({}, fastagi=("127.0.0.1", agi_port)).start()
    app = create_app(environ={"TEST_AMI_SECRET": "safecall-test-secret", "SAFECALL_LANG": "en"})
    runner = CliRunner()

    def check():
        return runner.invoke(app, ["--config", str(cli.root), "trunk", "check", "pbx", "--wait", "2"])

    try:
        configure_pbx(cli, stand_in.port, agi_port)
        good = check()
        assert good.exit_code == 0, good.output
        assert "ok   AMI login" in good.output and "context 'safecall-agi' exists" in good.output
        assert f"Asterisk reached the FastAGI server at 127.0.0.1:{agi_port}" in good.output

        stand_in.contexts = set()
        missing = check()
        assert missing.exit_code == 1 and "FAIL dialplan context: context 'safecall-agi' not found" in missing.output

        stand_in.contexts = {"safecall-agi"}
        stand_in.fastagi = ("127.0.0.1", free_port())  # Asterisk's dialplan points elsewhere
        unreachable = runner.invoke(
            create_app(environ={"TEST_AMI_SECRET": "safecall-test-secret", "SAFECALL_LANG": "en"}),
            ["--config", str(cli.root), "trunk", "check", "pbx", "--wait", "2"],
        )
        assert "FAIL FastAGI: Asterisk did not reach" in unreachable.output

        wrong = runner.invoke(
            create_app(environ={"TEST_AMI_SECRET": "nope", "SAFECALL_LANG": "en"}),
            ["--config", str(cli.root), "trunk", "check", "pbx", "--wait", "2"],
        )
        assert wrong.exit_code == 1 and "AMI login refused for user 'safecall'" in wrong.output
        # Asterisk reaches FastAGI from 127.0.0.1, but the trunk would serve sessions only from another address.
        stand_in.fastagi = ("127.0.0.1", agi_port)
        cli.set_trunks(asterisk_trunks(stand_in.port, agi_port, 'pbx_address = "127.0.0.9"'))
        elsewhere = check()
        assert elsewhere.exit_code == 1 and "FAIL FastAGI: Asterisk reached 127.0.0.1" in elsewhere.output
        assert 'set pbx_address = "127.0.0.1"' in elsewhere.output
        configure_pbx(cli, stand_in.port, agi_port)
        unset = runner.invoke(
            create_app(environ={"SAFECALL_LANG": "en"}),
            ["--config", str(cli.root), "trunk", "check", "pbx", "--wait", "2"],
        )
        assert "environment variable TEST_AMI_SECRET is not set" in unset.output
        assert "safecall-test-secret" not in good.output + wrong.output
    finally:
        stand_in.stop()
    configure_pbx(cli, free_port(), agi_port)
    closed = runner.invoke(app, ["--config", str(cli.root), "trunk", "check", "pbx", "--wait", "2"])
    assert "FAIL AMI login: cannot reach AMI at 127.0.0.1" in closed.output


def test_config_show_names_the_ami_secret_source_only(cli):
    configure_pbx(cli, 5038, 4573)
    output = cli("config", "show").output
    assert "<secret env:TEST_AMI_SECRET>" in output


def test_fastagi_hangs_up_without_thanks_when_the_database_fails(cli):
    class BrokenDatabase(RecordingSink):
        def record_keypress(self, *args):
            raise OSError("disk I/O error")

    sent = talk_to_fastagi(
        BrokenDatabase(load_flow(cli.root / "ivr", "safe-call")), ["200 result=0", "200 result=1", "200 result=1"]
    )
    assert sent[0] == "ANSWER" and sent[1].startswith("GET DATA") and sent[2] == "HANGUP"  # no thank-you


def test_after_a_restart_calls_asterisk_no_longer_has_are_retried_not_redialled(cli, pbx):
    stand_in, _ = pbx
    clock = SystemClock()
    services = Services.open(load_instance(cli.root, AMI_ENV), clock)
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    # A process wrote the first attempt for 응답 and died before Asterisk heard of it.
    with services.db.transaction() as session:
        member = session.exec(
            select(RunMember).join(Person, Person.id == RunMember.person_id).where(Person.name == "응답")
        ).one()
        member.state, member.attempts_made, member.next_attempt_at = MemberState.IN_CALL, 1, None
        session.add(member)
        session.add(
            Attempt(
                run_id=run.id,
                member_id=member.id,
                person_id=member.person_id,
                number=1,
                phone="+821001230001",
                token="orphaned-token-000000000000",
                placed_at=clock.now(),
            )
        )
    run_campaign(cli, stand_in)
    _, attempts = outcomes_by_name(services)
    assert attempts["응답"] == ["unknown", "acknowledged"]
    assert all(c.token != "orphaned-token-000000000000" for c in stand_in.calls)


@pytest.mark.soak
def test_a_fastagi_restart_mid_call_loses_no_acknowledgement(cli, pbx):
    stand_in, agi_port = pbx
    stand_in.agi_delay = 0.05
    state = {}

    def restart_fastagi():
        deadline = time.monotonic() + 10
        while not any(c.agi_connected for c in stand_in.calls) and time.monotonic() < deadline:
            time.sleep(0.005)
        trunk = state["dialer"].trunk
        old = trunk.fastagi
        old.stop()  # the sessions in progress die with it
        time.sleep(0.2)
        trunk.fastagi = FastAgiServer("127.0.0.1", agi_port, old.session, old.pbx_addresses).start()

    from safecall.services import Services as _Services

    original = _Services.dialer

    def capture(self, campaign, clock=None):
        state["dialer"] = original(self, campaign, clock)
        return state["dialer"]

    _Services.dialer = capture

    try:
        services, _ = run_campaign(cli, stand_in, faults=restart_fastagi)
    finally:
        _Services.dialer = original
    members, attempts = outcomes_by_name(services)
    assert members["응답"] == "acknowledged" and members["도움"] == "help_requested"
    assert attempts["응답"][-1] == "acknowledged" and set(attempts["응답"][:-1]) <= {"answered_no_key"}
    interrupted = [name for name, results in attempts.items() if name in ("응답", "도움") and len(results) > 1]
    assert interrupted, "the restart hit no call in progress"


@pytest.mark.soak
def test_the_campaign_survives_ten_ami_drops(cli, pbx):
    stand_in, _ = pbx
    stand_in.packet_gap = 0.01

    services, dialer = run_campaign(cli, stand_in, faults=link_cutter(stand_in, times=10, every=0.25))
    members, attempts = outcomes_by_name(services)
    # Every call whose keypress the IVR thanked (after storing it) is settled by it, whatever happened to the AMI link.
    thanked = {
        c.token
        for c in stand_in.calls
        if c.scenario in ("ack", "help")
        and any(d == ">" and line.startswith("STREAM FILE") for d, line in c.agi_transcript)
    }
    with services.db.session() as session:
        for attempt in session.exec(select(Attempt).where(Attempt.token.in_(thanked))):
            assert attempt.disposition in ("acknowledged", "help_requested"), attempt
            assert session.get(RunMember, attempt.member_id).state == attempt.disposition
    for name, responded in (("응답", "acknowledged"), ("도움", "help_requested")):
        if members[name] != responded:
            # Only a link that dropped on every one of their calls before the IVR is allowed to keep them from it,
            # and then they are on the visit list, never dropped.
            assert set(attempts[name]) <= {"failed", "unknown"} and len(attempts[name]) == 4, (name, attempts[name])
            assert members[name] == "unreachable"
    assert {members[n] for n in ("무입력", "무응답", "통화중", "혼잡", "끊음")} == {"unreachable"}
    assert dialer.trunk.ami.reconnects >= 5


# ---- an attempt is bound to its call ----


def replay(agi_port: int, env: dict[str, str], source: str = "127.0.0.1") -> list[str]:
    """A FastAGI session over a raw socket: the recorded environment with `env` in it, then "1" to every question."""
    lines = recorded_env(**env)
    sent = []
    with socket.create_connection(("127.0.0.1", agi_port), timeout=5, source_address=(source, 0)) as sock:
        stream = sock.makefile("rw", encoding="utf-8", newline="\n")
        stream.write("\n".join(lines) + "\n\n")
        stream.flush()
        for line in iter(stream.readline, ""):
            sent.append(line.strip())
            stream.write("200 result=1\n")
            stream.flush()
    return sent


# case -> (the number whose first call is held, where, what the copied session claims, where it comes from)
REPLAYS = {
    "wrong uniqueid": ("01001230002", "answered", {"agi_uniqueid": "1795326110.18"}, "127.0.0.1"),
    "wrong channel": ("01001230002", "answered", {"agi_channel": "PJSIP/attacker-00000001"}, "127.0.0.1"),
    "not the PBX's address": ("01001230002", "answered", {}, "127.0.0.2"),
    "after the real session": ("01001230002", "after_ivr", {}, "127.0.0.1"),
    "a call still ringing": ("01001230003", "ringing", {}, "127.0.0.1"),
}


@pytest.mark.parametrize("case", sorted(REPLAYS))
def test_a_copied_token_replayed_over_a_raw_socket_records_nothing_for_anyone(cli, pbx, case):
    stand_in, agi_port = pbx
    number, point, claims, source = REPLAYS[case]
    hold = stand_in.hold(number, point)
    seen = {}

    def replay_the_copied_token():
        try:
            assert hold.reached.wait(10), "the held call never came"
            call = hold.call  # its token is in AMI's VarSet events, the verbose log and `core show channels`
            env = {"agi_arg_1": call.token, "agi_uniqueid": call.channel_id, "agi_channel": call.channel_name, **claims}
            seen["sent"] = replay(agi_port, env, source)
        except Exception as exc:  # told to the test below
            seen["error"] = exc
        finally:
            hold.release.set()

    services, _ = run_campaign(cli, stand_in, faults=replay_the_copied_token)
    assert "error" not in seen, seen["error"]
    # Refused at once: a connection from elsewhere is closed unread, any other session is hung up and asked nothing.
    assert seen["sent"] == ([] if source != "127.0.0.1" else ["HANGUP"])
    members, attempts = outcomes_by_name(services)
    assert members == {
        "응답": "acknowledged",
        "도움": "help_requested",
        "무입력": "unreachable",
        "무응답": "unreachable",
        "통화중": "unreachable",
        "혼잡": "unreachable",
        "끊음": "unreachable",
    }
    assert attempts["무입력"] == ["answered_no_key"] * 4 and attempts["무응답"] == ["no_answer"] * 4
    with services.db.session() as session:
        keyed = {(a.person_id, a.digit) for a in session.exec(select(Attempt).where(Attempt.digit.is_not(None)))}
        names = {p.id: p.name for p in session.exec(select(Person))}
    assert {(names[person], digit) for person, digit in keyed} == {("응답", "1"), ("도움", "2")}
    if point == "answered":  # the refused session did not take the call's one IVR session: the real one still ran
        assert [line for side, line in hold.call.agi_transcript if side == ">"][0] == "ANSWER"


def test_only_one_key_of_the_flow_counts(cli):
    flow = load_flow(cli.root / "ivr", "safe-call")
    for reply in ("200 result=12", "200 result=1'", "200 result=#"):
        sink = RecordingSink(flow)
        sent = talk_to_fastagi(
            sink, ["200 result=0", reply, "200 result=", "200 result=", "200 result=0", "200 result=1", "200 result=1"]
        )
        assert sink.keys == [] and sent[2].startswith("GET DATA safecall/prompt-"), (reply, sent)
        assert 'SET VARIABLE SAFECALL_RESULT "no_key"' in sent
    sink = RecordingSink(flow)
    talk_to_fastagi(sink, ["200 result=0", "200 result=2", "200 result=0", "200 result=1", "200 result=1"])
    assert [key[1:] for key in sink.keys] == [("2", "help_requested")]


# ---- call-backs ----

OFFICE = "PJSIP/0221480000@carrier"


def test_call_backs_over_the_stand_in(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn({}, fastagi=("127.0.0.1", agi_port)).start()
    cli.set_trunks(asterisk_trunks(stand_in.port, agi_port, f'office_dial = "{OFFICE}"'))
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("재시도대기", "010-0123-0001"),
                    person_row("응답완료", "010-0123-0002"),
                    person_row("첫통화전", "010-0123-0003"),
                ],
            )
        ),
    )
    clock = SystemClock()
    services = Services.open(load_instance(cli.root, AMI_ENV), clock)
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    with services.db.transaction() as session:  # one was not reached and waits for a retry; one answered already
        members = {
            name: member
            for member, name in session.exec(
                select(RunMember, Person.name).join(Person, Person.id == RunMember.person_id)
            )
        }
        for name, state, disposition, phone in (
            ("재시도대기", "pending", "no_answer", "+821001230001"),
            ("응답완료", "acknowledged", "acknowledged", "+821001230002"),
        ):
            member = members[name]
            member.state, member.attempts_made = state, 1
            member.next_attempt_at = clock.now() + timedelta(hours=1) if state == "pending" else None
            session.add(member)
            session.add(
                Attempt(
                    run_id=run.id,
                    member_id=member.id,
                    person_id=member.person_id,
                    number=1,
                    phone=phone,
                    token=f"earlier-{member.id}-000000000000",
                    placed_at=clock.now(),
                    status="done",
                    disposition=disposition,
                    digit="1" if state != "pending" else None,
                )
            )
    services.trunk()  # the one trunk: its FastAGI server takes call-backs too
    try:
        retry = stand_in.call_in("01001230001", "ack")
        answered = stand_in.call_in("01001230002", "ack")
        unknown = stand_in.call_in("01009990000", "ack")
        elsewhere = stand_in.call_in("01001230003", "ack", source="127.0.0.2")  # not from the PBX's address
        stand_in.call_in("01001230003", "no_key")  # before their first call, no key: checked by their attempt below
    finally:
        services.close_trunks()
        stand_in.stop()

    def said(call):
        return [line for side, line in call.agi_transcript if side == ">"]

    # The person waiting for a retry hears the IVR; their 1 settles them, acknowledged by call-back.
    assert said(retry)[:2] == ["ANSWER", "GET DATA safecall/prompt-greeting 5000 1"]
    assert said(retry)[2:] == [
        'STREAM FILE safecall/closing-thanks_well ""',
        'SET VARIABLE SAFECALL_RESULT "acknowledged"',
        "HANGUP",
    ]
    members, attempts = outcomes_by_name(services)
    assert members["재시도대기"] == "acknowledged" and attempts["재시도대기"] == ["no_answer", "acknowledged"]
    with services.db.session() as session:
        by_name = {}
        for attempt, name in session.exec(
            select(Attempt, Person.name).join(Person, Person.id == Attempt.person_id).order_by(Attempt.number)
        ):
            by_name.setdefault(name, []).append(attempt)
    callback = by_name["재시도대기"][-1]
    assert (
        callback.inbound and callback.digit == "1" and callback.status == "done" and callback.phone == "+821001230001"
    )
    assert callback.ended_at is not None and callback.ivr_started_at is not None

    # Someone who answered already, and a number nobody has: a short message, then the office; nothing is written.
    for call in (answered, unknown):
        assert said(call) == [
            "ANSWER",
            f'SET VARIABLE SAFECALL_OFFICE "{OFFICE}"',
            'STREAM FILE safecall/closing-not_due ""',
        ]
    assert members["응답완료"] == "acknowledged" and len(by_name["응답완료"]) == 1

    # A session from another address is closed unread; the real one from the PBX opens the call-back, whose end
    # (no key) is recorded: an answered call without a key, and the person is retried.
    assert said(elsewhere) == []
    assert [(a.inbound, a.disposition, a.status) for a in by_name["첫통화전"]] == [(True, "answered_no_key", "done")]
    assert members["첫통화전"] == "pending"


def test_a_caller_not_due_hears_only_the_message_when_no_office_is_set(cli):
    asked = []

    class NobodyDue(RecordingSink):
        def open_inbound_call(self, caller, at):
            asked.append(caller)
            return None

    sink = NobodyDue(load_flow(cli.root / "ivr", "safe-call"))
    env = recorded_env("01012345678", agi_network_script="safecall-callback", agi_uniqueid="1795330000.7")
    assert talk_to_fastagi(sink, ["200 result=0", "200 result=0 endpos=7679"], env=env) == [
        "ANSWER",
        'STREAM FILE safecall/closing-not_due ""',
    ]
    assert asked == ["+821012345678"] and sink.keys == [] and sink.events == []


def test_caller_ids_as_asterisk_gives_them():
    for raw in ("01001230001", "+821001230001", "821001230001", " 010-0123-0001 "):
        assert caller_e164(raw) == "+821001230001", raw
    for raw in ("anonymous", "", "12", "unknown"):
        assert caller_e164(raw) is None, raw


def test_a_person_hears_the_recorded_variant_of_their_voice_style_where_there_is_one(cli, tmp_path):
    flow = load_flow(cli.root / "ivr", "safe-call")
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    (sounds / "prompt-greeting-slow.wav").write_bytes(b"RIFF")  # only the greeting was recorded slowly
    (sounds / "closing-thanks_well-loud.sln16").write_bytes(b"")

    class StyledSink(RecordingSink):
        def __init__(self, style):
            super().__init__(flow)
            self.style = style

        def live_call(self, token):
            call = super().live_call(token)
            return replace(call, voice_style=self.style)

    def said(style: str) -> list[str]:
        sessions = IvrSessions(StyledSink(style), SystemClock().now, answered(), sounds=sounds)
        server = FastAgiServer("127.0.0.1", 0, sessions).start()
        try:
            with socket.create_connection(server.address, timeout=5) as sock:
                stream = sock.makefile("rw", encoding="utf-8", newline="\n")
                stream.write("\n".join(recorded_env()) + "\n\n")
                stream.flush()
                sent = []
                for reply in ("200 result=0", "200 result=1", "200 result=0", "200 result=1", "200 result=1"):
                    sent.append(stream.readline().strip())
                    stream.write(reply + "\n")
                    stream.flush()
        finally:
            server.stop()
        return [line.split()[2] for line in sent if line.startswith(("GET DATA", "STREAM FILE"))]

    assert said("slow") == ["safecall/prompt-greeting-slow", "safecall/closing-thanks_well"]
    assert said("loud") == ["safecall/prompt-greeting", "safecall/closing-thanks_well-loud"]
    assert said("normal") == ["safecall/prompt-greeting", "safecall/closing-thanks_well"]


def test_the_roster_voice_style_picks_the_recorded_slow_greeting_over_the_stand_in(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn({"01001230001": "ack", "01001230002": "ack"}, fastagi=("127.0.0.1", agi_port)).start()
    cli.set_trunks(asterisk_trunks(stand_in.port, agi_port))
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("천천히씨", "010-0123-0001") + ["천천히"],
                    person_row("보통씨", "010-0123-0002") + ["보통"],
                ],
                header=HEADER + ["음성"],
            )
        ),
    )
    sounds = cli.root / "ivr" / "asterisk" / "sounds" / "safecall"
    sounds.mkdir(parents=True)
    (sounds / "prompt-greeting-slow.wav").write_bytes(b"RIFF")  # as `ivr prompts --from` writes greeting.slow.wav
    try:
        services, _ = run_campaign(cli, stand_in)
    finally:
        stand_in.stop()
    asked = {
        call.number: [line for side, line in call.agi_transcript if side == ">" and line.startswith("GET DATA")]
        for call in stand_in.calls
    }
    assert asked == {
        "01001230001": ["GET DATA safecall/prompt-greeting-slow 5000 1"],
        "01001230002": ["GET DATA safecall/prompt-greeting 5000 1"],
    }
    assert outcomes_by_name(services)[0] == {"천천히씨": "acknowledged", "보통씨": "acknowledged"}
