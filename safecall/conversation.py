"""One IVR call as a sans-IO conversation: events in, actions out. Every trunk renders it; none keeps a rule of its own.

Like panoramisk's protocol, which is fed bytes and never does I/O, a Conversation is fed what happened on the
line (answered, a key, speech heard, no input, hang-up) and what became of its requests (the IVR session
claimed, the answer stored), and answers with what to do next. Asterisk renders the actions as AGI commands,
Twilio as TwiML, the simulated trunk as scheduled events.

The rules of a call live here and nowhere else:
- a placed call first claims the attempt's one IVR session (a call-back's session is its own, opened already);
- only a whole key of the flow counts: "12" or "1' OR 1=1--" is not "1";
- a spoken answer is judged by safecall.speech.judge; help said aloud is help, as key 2 is;
- an unclear spoken answer is kept for the officer, and the question is asked again, then with keys only,
  then the call counts as no answer (the person is retried, and goes on the list if it stays so);
- the answer is stored before thanking, and if storing fails or is refused, the call ends without thanks;
- a call-back ends with its IVR (no dialer waits for its end);
- help (a flow with [help]): only once the answer is stored, the person is put through to the duty officer in
  office hours (never in a call that is with the officer already), else asked for a short message; a transfer
  nobody answered, busy or failed also ends in the message; what came of either is kept for the officer.
"""

from __future__ import annotations

from dataclasses import dataclass

from safecall.domain import Disposition
from safecall.ivr import HELP_CLOSING, HelpLine, IvrFlow
from safecall.speech import judge

# ---- events: what happened ----


@dataclass(frozen=True, slots=True)
class Answered:
    """The call is up and this session speaks for it (the trunk checked the line: the right channel or CallSid)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """The attempt's one IVR session was claimed (True) or was not (False: closed, or begun before)."""

    ok: bool


@dataclass(frozen=True, slots=True)
class Pressed:
    digit: str  # the whole reply as the trunk got it


@dataclass(frozen=True, slots=True)
class Said:
    """A spoken answer as the recogniser heard it."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class NoInput:
    pass


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer was stored (True), or storing failed or was refused (False)."""

    ok: bool


@dataclass(frozen=True, slots=True)
class HungUp:
    pass


TRANSFER_RESULTS = ("connected", "no_answer", "busy", "failed")


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What became of the transfer to the duty officer: one of TRANSFER_RESULTS."""

    result: str
    connected_seconds: float | None = None  # how long the officer spoke with the person, where the trunk says


@dataclass(frozen=True, slots=True)
class MessageRecorded:
    """The message ended: `ref` names the recording on the trunk (None: nothing was recorded), `seconds` its length."""

    ref: str | None
    seconds: float


# ---- actions: what to do ----


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim the attempt's one IVR session (CallSink.start_ivr), then feed Claimed."""


@dataclass(frozen=True, slots=True)
class Ask:
    """Play a prompt, then wait `timeout` seconds for one key, or also for speech when `speech`."""

    prompt: str  # audio name, e.g. prompt-greeting
    text: str
    timeout: float
    speech: bool = False


@dataclass(frozen=True, slots=True)
class NoteSpeech:
    """Keep what was heard when it meant no answer (CallSink.note_speech), for the officer; nothing to feed back."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Store:
    """Store the answer (CallSink.record_keypress), then feed Stored: nobody is thanked for an answer not stored."""

    outcome: str
    digit: str  # the key, or "speech"
    speech: tuple[str, float] | None = None  # (what was heard, its confidence) for a spoken answer
    risk: bool = False  # the judge heard words of risk


@dataclass(frozen=True, slots=True)
class Closing:
    """Play the closing message: thanks for a stored answer (`outcome`), or the no-answer closing (outcome None)."""

    outcome: str | None
    closing: str  # audio name, e.g. closing-thanks_well
    text: str


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt that waits for nothing (e.g. before the transfer or the message)."""

    prompt: str  # audio name, e.g. prompt-help_transfer
    text: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Put the person through to the duty officer (`number`, E.164; the trunk may dial its own dial string), ringing
    at most `ring_seconds`; then feed TransferResult."""

    number: str
    ring_seconds: int


@dataclass(frozen=True, slots=True)
class NoteTransfer:
    """Keep what came of the transfer (CallSink.record_transfer); nothing to feed back."""

    result: str
    connected_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RecordMessage:
    """Record the person's message, at most `max_seconds` (after a beep); then feed MessageRecorded."""

    max_seconds: int


@dataclass(frozen=True, slots=True)
class KeepMessage:
    """Keep the recorded message with the attempt, for its call-back task (CallSink.record_message);
    nothing to feed back."""

    ref: str
    seconds: float


@dataclass(frozen=True, slots=True)
class End:
    """Record the call's end (a call-back: no dialer waits for it); its line result is 'answered'."""


@dataclass(frozen=True, slots=True)
class HangUp:
    """Hang up; `unsaved`: the answer could not be stored, and the person will be called again."""

    unsaved: bool = False


Event = Answered | Claimed | Pressed | Said | NoInput | Stored | HungUp | TransferResult | MessageRecorded
Action = (
    Claim
    | Ask
    | NoteSpeech
    | Store
    | Closing
    | End
    | HangUp
    | Play
    | Transfer
    | NoteTransfer
    | RecordMessage
    | KeepMessage
)

# Made once: the events and actions that carry nothing of their own.
ANSWERED, NO_INPUT, HUNG_UP = Answered(), NoInput(), HungUp()
CLAIMED, CLAIM_REFUSED, STORED, STORE_FAILED = Claimed(True), Claimed(False), Stored(True), Stored(False)
CLAIM, END, HANG_UP, HANG_UP_UNSTORED = Claim(), End(), HangUp(), HangUp(unsaved=True)
NONE: tuple = ()

# What the conversation waits for.
WAIT_ANSWER, WAIT_CLAIM, WAIT_REPLY, WAIT_STORED, OVER, WAIT_TRANSFER, WAIT_MESSAGE = range(7)
UNCLEAR_BEFORE_KEYS_ONLY = 2  # unclear spoken answers after which only keys are offered, once, before no answer


class Conversation:
    """One call's IVR. `listens`: the trunk can hear speech (and the flow has spoken answers); `inbound`: a call-back.

    `asked`, `unclear` and `keys_only` are all a trunk without memory between requests (Twilio) carries to resume the
    call: Conversation(flow, ..., asked=a, unclear=u, keys_only=k, waiting=WAIT_REPLY) (or waiting=WAIT_TRANSFER or
    WAIT_MESSAGE, for the transfer's or the message's result).

    `office_open`: the duty officer's office hours hold now (IvrFlow.office_open, with the injected
    clock); `with_officer`: the call is with the officer already (nobody is put through to them again).
    """

    __slots__ = (
        "flow",
        "listens",
        "inbound",
        "asked",
        "unclear",
        "keys_only",
        "waiting",
        "office_open",
        "with_officer",
        "_store",
    )

    def __init__(
        self,
        flow: IvrFlow,
        *,
        listens: bool,
        inbound: bool = False,
        asked: int = 0,
        unclear: int = 0,
        keys_only: bool = False,
        waiting: int = WAIT_ANSWER,
        office_open: bool = False,
        with_officer: bool = False,
    ):
        self.flow = flow
        self.listens = listens and flow.speech is not None
        self.inbound = inbound
        self.office_open = office_open
        self.with_officer = with_officer
        self.asked = asked  # times the question was played
        self.unclear = unclear  # unclear spoken answers so far
        self.keys_only = keys_only  # the question was asked with keys only, after unclear answers: the last chance
        self.waiting = waiting
        self._store: Store | None = None

    @property
    def over(self) -> bool:
        return self.waiting == OVER

    def handle(self, event: Event) -> tuple[Action, ...]:
        """The actions `event` calls for, in order; an event the conversation does not wait for changes nothing."""
        waiting = self.waiting
        if waiting == OVER:
            return NONE
        if isinstance(event, HungUp):
            return self._over(NONE)
        if waiting == WAIT_REPLY:
            if isinstance(event, Pressed):
                meaning = self.flow.digits.get(event.digit)  # the whole reply: "12" is no key of the flow
                if meaning is not None:
                    return self._storing(Store(meaning.outcome, event.digit))
                return self._again("invalid")
            if isinstance(event, Said):
                return self._heard(event)
            if isinstance(event, NoInput):
                return self._again("repeat")
            return NONE
        if waiting == WAIT_ANSWER and isinstance(event, Answered):
            if self.inbound:  # a call-back's session was opened with it
                return self._ask()
            self.waiting = WAIT_CLAIM
            return (CLAIM,)
        if waiting == WAIT_CLAIM and isinstance(event, Claimed):
            return self._ask() if event.ok else self._over((HANG_UP,))
        if waiting == WAIT_TRANSFER and isinstance(event, TransferResult):
            if event.result == "connected":
                return self._over((NoteTransfer("connected", event.connected_seconds), HANG_UP))
            result = event.result if event.result in TRANSFER_RESULTS else "failed"
            help_line = self.flow.help_line
            assert help_line is not None, "WAIT_TRANSFER is only reached by _help, with the flow's help line"
            return (NoteTransfer(result),) + self._message("help_no_officer", help_line)
        if waiting == WAIT_MESSAGE and isinstance(event, MessageRecorded):
            kept = (KeepMessage(event.ref, event.seconds),) if event.ref and event.seconds > 0 else NONE
            closing = HELP_CLOSING if kept else self._help_closing()
            return self._over(
                kept + (Closing("help_requested", f"closing-{closing}", self.flow.closings[closing]), HANG_UP)
            )
        if waiting == WAIT_STORED and isinstance(event, Stored):
            store = self._store
            if not event.ok:
                return self._over((HANG_UP_UNSTORED,))
            assert store is not None, "WAIT_STORED is only reached by _storing, which keeps the Store"
            help_line = self.flow.help_line
            if store.outcome == Disposition.HELP_REQUESTED and help_line is not None and not self.with_officer:
                return self._help(help_line)
            meaning = self.flow.digits.get(store.digit) or self.flow.meaning_of(
                store.outcome
            )  # a key's own, or speech's
            # A flow without a help key still has its no-answer closing; never the thanks for being well.
            closing = meaning.closing if meaning is not None else "no_input"
            return self._over((Closing(store.outcome, f"closing-{closing}", self.flow.closings[closing]), HANG_UP))
        return NONE

    # ---- the rules ----

    def _ask(self, key: str = "greeting") -> tuple[Action, ...]:
        self.asked += 1
        self.waiting = WAIT_REPLY
        flow = self.flow
        speech = self.listens and self.unclear < UNCLEAR_BEFORE_KEYS_ONLY
        if self.listens and not speech:
            self.keys_only = True
        return (Ask(f"prompt-{key}", flow.prompts[key], flow.input_timeout_seconds, speech),)

    def _again(self, key: str) -> tuple[Action, ...]:
        """No answer yet: ask again while repeats remain (and keys-only was not offered already), else no answer."""
        if self.asked > self.flow.repeats_on_no_input or self.keys_only:
            return self._no_answer()
        if key == "invalid" and not self.flow.prompts.get("invalid"):
            key = "repeat"
        return self._ask(key)

    def _heard(self, said: Said) -> tuple[Action, ...]:
        text = said.text.strip()
        answers = self.flow.speech  # never None when self.listens
        if not text or not self.listens or self.keys_only or answers is None:
            return self._again("repeat")  # nothing heard, or speech no longer offered
        verdict = judge(answers, text, said.confidence)
        if verdict.outcome != "unclear":
            return self._storing(Store(verdict.outcome, "speech", (text, said.confidence), verdict.risk))
        self.unclear += 1  # at UNCLEAR_BEFORE_KEYS_ONLY, the next ask offers keys only
        return (NoteSpeech(text, said.confidence),) + self._again("repeat")

    def _storing(self, store: Store) -> tuple[Action, ...]:
        self._store = store
        self.waiting = WAIT_STORED
        return (store,)

    def _help(self, help_line: HelpLine) -> tuple[Action, ...]:
        """Help is stored: the duty officer in office hours (if the flow names one), else a message."""
        if self.office_open and help_line.transfer_number:
            self.waiting = WAIT_TRANSFER
            return (
                Play("prompt-help_transfer", self.flow.prompts["help_transfer"]),
                Transfer(help_line.transfer_number, help_line.ring_seconds),
            )
        return self._message("help_message", help_line)

    def _message(self, prompt: str, help_line: HelpLine) -> tuple[Action, ...]:
        self.waiting = WAIT_MESSAGE
        return (Play(f"prompt-{prompt}", self.flow.prompts[prompt]), RecordMessage(help_line.message_seconds))

    def _help_closing(self) -> str:
        """The flow's closing for help (no message was left)."""
        meaning = self.flow.meaning_of("help_requested")
        return meaning.closing if meaning is not None else "no_input"

    def _no_answer(self) -> tuple[Action, ...]:
        return self._over((Closing(None, "closing-no_input", self.flow.closings["no_input"]), HANG_UP))

    def _over(self, actions: tuple[Action, ...]) -> tuple[Action, ...]:
        self.waiting = OVER
        return (END,) + actions if self.inbound else actions
