"""Benchmark 1d: AMI events parsed and dispatched per second.

A loopback TCP server replays tests/fixtures/asterisk/ami-60-concurrent.txt
(the banner once, then the recorded stream N times). Two readers take it in:

- SafeCall's reader (asterisk-ami behind safecall.telephony.asterisk.ami, with
  its isolated listeners), dispatching each event to a listener;
- panoramisk's AMIProtocol (asyncio), dispatching each event to its factory.

    python benchmarks/ami_ingest.py --repeat 200
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from safecall.telephony.asterisk.ami import _PatchedClient  # noqa: E402

RECORDING = ROOT / "tests" / "fixtures" / "asterisk" / "ami-60-concurrent.txt"


def replay_server(payload: bytes) -> tuple[socket.socket, int]:
    """Serves `payload` to each connection on 127.0.0.1, then waits for the reader to close."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)

    def serve() -> None:
        for _ in range(2):
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(payload)
                connection.settimeout(120)
                try:
                    while connection.recv(65536):
                        pass
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def safecall_reader(port: int, expected: int) -> float:
    received = 0
    done = threading.Event()

    def on_event(event, source=None) -> None:
        nonlocal received
        received += 1
        if received == expected:
            done.set()

    client = _PatchedClient("127.0.0.1", port, timeout=5)
    client.add_event_listener(on_event)
    started = time.perf_counter()
    client.connect()
    if not done.wait(300):
        raise RuntimeError(f"SafeCall's reader saw {received} of {expected} events")
    elapsed = time.perf_counter() - started
    client.disconnect()
    return elapsed


def panoramisk_reader(port: int, expected: int) -> float:
    from panoramisk.ami_protocol import AMIProtocol

    async def run() -> float:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        class Factory:
            received = 0
            forgetable_actions = ()
            awaiting_actions: list = []

            def dispatch(self, message) -> None:
                Factory.received += 1
                if Factory.received == expected and not done.done():
                    done.set_result(None)

            def connection_lost(self, exc) -> None:
                pass

        def protocol() -> AMIProtocol:
            proto = AMIProtocol()
            proto.factory = Factory()
            return proto

        started = time.perf_counter()
        transport, proto = await loop.create_connection(protocol, "127.0.0.1", port)
        proto.factory = Factory()
        await asyncio.wait_for(done, 300)
        elapsed = time.perf_counter() - started
        transport.close()
        return elapsed

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200, help="times the recorded stream is replayed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    recording = RECORDING.read_bytes()
    banner, body = recording.split(b"\r\n", 1)
    # The recording ends with the reply to Logoff (Goodbye), which ends a session: replay what comes before it.
    body = body[: body.index(b"Response: Goodbye")]
    per_copy = sum(1 for packet in body.split(b"\r\n\r\n") if packet.strip().startswith(b"Event:"))
    expected = per_copy * args.repeat
    payload = banner + b"\r\n" + body * args.repeat
    results = {"events": expected, "megabytes": round(len(payload) / 1e6, 1), "machine": machine()}
    for name, reader in (("safecall", safecall_reader), ("panoramisk", panoramisk_reader)):
        listener, port = replay_server(payload)
        seconds = reader(port, expected)
        listener.close()
        results[name] = {"seconds": round(seconds, 2), "events_per_second": round(expected / seconds)}
    report(results, args.json)


if __name__ == "__main__":
    main()
