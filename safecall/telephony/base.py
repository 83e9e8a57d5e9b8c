"""The one interface the engine knows: a Trunk places calls and reports what became of them.

Keypresses do not travel through the engine: the IVR side (simulated call,
FastAGI server, Twilio webhook) writes them at once through a CallSink, so
an acknowledgement is durable before the thank-you message plays. The sink
finds the attempt, its run and its campaign from the token alone, so one trunk
serves every open run and any process may receive a report.

Each kind of trunk (simulated, asterisk, twilio) is a package or module that
exports KIND: its settings model, its factory and its `trunk check`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from safecall.errors import TrunkError
from safecall.i18n import N_
from safecall.ivr import IvrFlow


class LineResult(StrEnum):
    """What the telephone line says about a call, before any keypress is considered."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion, network failure
    INVALID_NUMBER = "invalid_number"
    MACHINE = "machine"
    UNKNOWN = "unknown"  # the trunk lost track of the call


# What to do when a check of `safecall trunk check` fails, by the check's name, and where the docs say more.
NEXT_STEP = {
    "AMI secret": N_("set the secret that ami_secret names in config/trunks.toml (docs/asterisk.md, section 3)"),
    "AMI login": N_(
        "check ami_host and ami_port in config/trunks.toml, that Asterisk is running, the AMI user in "
        "manager.conf and the firewall (docs/asterisk.md, sections 1, 3 and 7)"
    ),
    "AMI ping": N_(
        "reload the manager module in Asterisk and check the AMI user's permissions (docs/asterisk.md, section 1)"
    ),
    "dialplan context": N_("include the dialplan file and reload the dialplan (docs/asterisk.md, section 2)"),
    "FastAGI": N_(
        "check the AGI() address in the dialplan, pbx_address in config/trunks.toml and the firewall "
        "(docs/asterisk.md, sections 2, 3 and 7)"
    ),
    "webhook URL": N_("give the trunk a public https address in public_base_url (docs/twilio.md, section 3)"),
    "credentials": N_("check the account SID and auth token the trunk reads (docs/twilio.md, section 1)"),
    "from number": N_("use a number the Twilio account owns as from_number (docs/twilio.md, section 1)"),
}


def next_step(check: Check) -> str | None:
    """The next step for a failed check (an N_ message), or None."""
    return None if check.ok else NEXT_STEP.get(getattr(check.name, "template", check.name))


@dataclass(frozen=True)
class Check:
    """One line of `safecall trunk check`."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Capacity:
    channels: int
    calls_per_second: float


@dataclass(frozen=True)
class CallRequest:
    token: str  # unguessable; the IVR side reports under it
    number: str  # E.164
    attempt_number: int
    week: date  # the run's week, so simulated outcomes can be derived again after a crash
    placed_at: datetime
    ring_timeout: float
    max_call_seconds: float
    flow: IvrFlow


@dataclass(frozen=True)
class CallEvent:
    token: str
    kind: str  # "answered" or "ended"
    at: datetime
    result: str | None = None  # a LineResult, for "ended"
    detail: str = ""  # e.g. the hangup cause


@dataclass(frozen=True)
class LiveCall:
    """An attempt whose call is open, as the IVR side needs it."""

    token: str
    attempt_id: int
    flow: IvrFlow  # the IVR flow of the attempt's campaign
    call_id: str | None  # the trunk's own id for the call (e.g. Twilio's CallSid), once noted
    ivr_started: bool  # an IVR session already began for this attempt (there is only one)
    voice_style: str = "normal"  # the person's: prompts spoken normally, slowly or loudly, where the trunk can


class CallSink(Protocol):
    """Where the IVR side and the trunks report; every method is durable when it returns."""

    def live_call(self, token: str) -> LiveCall | None:
        """The attempt under `token` if its call is still open; None otherwise."""

    def start_ivr(self, token: str, at: datetime) -> bool:
        """Claim the attempt's one IVR session: True the first time, for an open call; False ever after."""

    def note_call_id(self, token: str, call_id: str) -> None:
        """Remember the trunk's own id for the call (e.g. Twilio's CallSid)."""

    def record_keypress(
        self,
        token: str,
        digit: str,
        outcome: str,
        at: datetime,
        speech: tuple[str, float] | None = None,
        risk: bool = False,
    ) -> bool:
        """Store the IVR outcome for the attempt; False if the token is unknown or closed.

        A spoken answer comes as digit "speech" with `speech` = (the text heard, its confidence 0..1), and
        `risk` when the judge heard words of suicide or an emergency (safecall.speech.Verdict.risk).
        """

    def note_speech(self, token: str, text: str, confidence: float) -> None:
        """Keep what was heard when it meant no answer (e.g. "안 괜찮아요"), for the officer; the call goes on."""

    def open_inbound_call(self, caller: str, at: datetime) -> LiveCall | None:
        """A call-back from `caller` (E.164): an open attempt for that person's member waiting for a call, or None."""

    def record_events(self, events: list[CallEvent]) -> None:
        """Write reports on calls (answers, ends) at once; a report on a call already closed changes nothing."""

    def record_transfer(self, token: str, result: str, at: datetime, connected_seconds: float | None = None) -> bool:
        """Keep what came of putting call `token` through to the duty officer
        (safecall.conversation.TRANSFER_RESULTS)."""

    def record_message(self, token: str, ref: str, seconds: float, at: datetime) -> bool:
        """Keep the message call `token` left (`ref`: the recording's file
        on the PBX, or safecall.telephony.twilio.refs.twilio_ref)."""


class TrunkBusy(TrunkError):
    """The trunk cannot take the call now and made none (e.g. Twilio's 429, or a 5xx after which no call exists).

    The dialer places the same attempt again after `retry_after` seconds (None: the trunk did not say), and meanwhile
    goes on with other runs' calls, deadlines and leases: a trunk never waits inside `originate`.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Trunk(Protocol):
    capacity: Capacity

    def ready(self) -> bool:
        """Whether calls can be placed now (e.g. the AMI link is up); the dialer waits instead of burning attempts."""

    def originate(self, request: CallRequest) -> None:
        """Start the call, returning at once; raises TrunkBusy to be asked again later,
        TrunkError if it cannot be started."""

    def wait_events(self, until: datetime) -> list[CallEvent]:
        """Events that happened by `until`; blocks until the first of them, or `until`."""

    def recover(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        """After a restart: whatever the trunk can still tell about a call placed earlier."""

    def reconcile(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        """A call past its longest possible length with no final report: ask the provider what became of it."""

    def close(self) -> None:
        """Release connections and servers."""


@dataclass(frozen=True)
class TrunkKind:
    """What a kind of trunk brings: its settings model, its factory and its `trunk check`."""

    config_model: type
    # build(config, *, clock, sink, environ, root) -> Trunk: started (servers listening, links up).
    build: Callable[..., Trunk]
    # check(config, *, environ, flow, wait_seconds) -> the lines of `safecall trunk check`.
    check: Callable[..., list[Check]]
