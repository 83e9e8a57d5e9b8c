"""Benchmark 1e: latency of the Twilio webhook server at a steady 200 requests/s on loopback.

The real server (Starlette on uvicorn, signatures checked, keypresses written
to SQLite before the thanks is returned) serves open attempts. A second
process sends signed requests open-loop, each at its planned moment whatever
the previous ones did, as a call would: voice (the greeting), gather with
Digits=1 (the acknowledgement, stored), then the final status callback.

    python benchmarks/webhook_latency.py --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from safecall.clock import SystemClock  # noqa: E402
from safecall.roster import import_roster  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance, scaffold_instance  # noqa: E402
from safecall.store import Attempt, RunMember  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402
from safecall.telephony.twilio.webhooks import WebhookServer, create_webhook_app  # noqa: E402

PUBLIC = "https://safecall.example.org"
AUTH_TOKEN = "benchmark-auth-token-not-a-secret"


def open_attempts(directory: Path, calls: int) -> tuple[Services, list[tuple[str, str]], object]:
    scaffold_instance(directory)
    clock = SystemClock()
    services = Services.open(load_instance(directory), clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(services.instance)
    import_roster(
        services.db,
        write_roster(directory / "roster.csv", calls, ["사직동"]),
        services.instance.settings,
        now=clock.now(),
        today=services.today(),
    )
    # Open attempts as the dialer leaves them just before Twilio calls back: written, call placed.
    # With its rules, as `campaign launch` and the scheduler launch a run (a run without them reads the files)
    run, _ = launch_run(
        services.db,
        campaign,
        calendar,
        now=datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
        rules=services.rules_snapshot("weekly-safe-call"),
    )
    tokens = []
    with services.db.transaction() as session:
        for member in session.exec(RunMember.__table__.select().where(RunMember.run_id == run.id)):
            # The CallSid the trunk noted when Twilio accepted the call: only requests about that call are served.
            token, call_sid = secrets.token_urlsafe(18), "CA" + secrets.token_hex(16)
            session.add(
                Attempt(
                    run_id=run.id,
                    member_id=member.id,
                    person_id=member.person_id,
                    number=1,
                    phone="+821000000000",
                    token=token,
                    trunk_call_id=call_sid,
                    placed_at=clock.now(),
                )
            )
            tokens.append((token, call_sid))
    return services, tokens, services.lifecycle


def warm_up(port: int, attempt: tuple[str, str]) -> None:
    """The speech model loaded (the server loads it in the background when it starts: seconds of CPU a live server
    has long spent before its calls come) and one call's voice, gather and status, on an attempt the plan does not
    use, all before the clock starts."""
    from urllib.request import Request, urlopen

    from safecall import speech

    speech.analyser()

    for _kind, path, params in plan_requests([attempt], 3):
        with urlopen(
            Request(
                f"http://127.0.0.1:{port}{path}", data=urlencode(params).encode(), headers=signed(PUBLIC + path, params)
            ),
            timeout=30,
        ) as response:
            response.read()


def signed(url: str, params: dict[str, str]) -> dict[str, str]:
    from twilio.request_validator import RequestValidator

    return {
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def plan_requests(tokens: list[tuple[str, str]], total: int) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, path, params) in call order: voice, gather, status for each attempt."""
    requests = []
    for token, call_sid in tokens:
        common = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32}
        requests += [
            ("voice", f"/twilio/voice/{token}", {**common, "CallStatus": "in-progress"}),
            ("gather", f"/twilio/gather/{token}?asked=1", {**common, "Digits": "1"}),
            ("status", f"/twilio/status/{token}", {**common, "CallStatus": "completed"}),
        ]
    # Interleave calls as they overlap in real life: the i-th request of every call, call after call.
    ordered = [requests[call * 3 + step] for step in range(3) for call in range(len(tokens))]
    return ordered[:total]


def load_generator(port: int, plan: list, rate: float, results) -> None:
    import aiohttp

    async def run() -> list[tuple[str, float, int]]:
        out = []
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter() + 0.5

            async def one(index: int, kind: str, path: str, params: dict[str, str]) -> None:
                await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
                sent = time.perf_counter()
                async with session.post(
                    f"http://127.0.0.1:{port}{path}", data=urlencode(params), headers=signed(PUBLIC + path, params)
                ) as response:
                    await response.read()
                    out.append((kind, time.perf_counter() - sent, response.status))

            await asyncio.gather(*(one(i, *request) for i, request in enumerate(plan)))
        return out

    results.put(asyncio.run(run()))


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:  # a smoke run's handful of requests
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    services, tokens, outcomes = open_attempts(
        Path(tempfile.mkdtemp(prefix="safecall-webhooks-")), total // 3 * 21 // 20 + 10
    )  # 2 % lack consent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_webhook_app(
        public_base_url=PUBLIC, auth_token=AUTH_TOKEN, sink=outcomes, now=SystemClock().now, on_event=lambda event: None
    )
    server = WebhookServer(app, "127.0.0.1", port).start()
    warm = tokens.pop()
    warm_up(port, warm)  # the first requests pay for lazy set-up (threads, statement caches): not the figure
    from_generator = multiprocessing.get_context("spawn").Queue()
    generator = multiprocessing.get_context("spawn").Process(
        target=load_generator, args=(port, plan_requests(tokens, total), args.rate, from_generator)
    )
    generator.start()
    samples = from_generator.get(timeout=args.seconds * 10 + 60)
    generator.join()
    server.stop()
    with services.db.session() as session:
        stored = session.exec(Attempt.__table__.select().where(Attempt.digit == "1", Attempt.token != warm[0])).all()
    latencies = [seconds * 1000 for _, seconds, _ in samples]
    results = {
        "rate_per_second": args.rate,
        "requests": len(samples),
        "errors": sum(1 for *_, code in samples if code >= 400),
        "acknowledgements_stored": len(stored),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "by_kind": {
            kind: {
                "p50_ms": round(percentile([s * 1000 for k, s, _ in samples if k == kind], 0.5), 2),
                "p99_ms": round(percentile([s * 1000 for k, s, _ in samples if k == kind], 0.99), 2),
            }
            for kind in ("voice", "gather", "status")
        },
        "machine": machine(),
    }
    report(results, args.json)
    services.close()


if __name__ == "__main__":
    main()
