"""The IVR conversation as a pure decision table: events in, actions out, every rule of a call (issue 25, part 1)."""

from __future__ import annotations

import pytest

import safecall.conversation as conversation_module
from safecall.conversation import (
    ANSWERED,
    END,
    HANG_UP,
    HANG_UP_UNSTORED,
    HUNG_UP,
    NO_INPUT,
    WAIT_MESSAGE,
    WAIT_REPLY,
    WAIT_TRANSFER,
    Ask,
    Claim,
    Claimed,
    Closing,
    Conversation,
    KeepMessage,
    MessageRecorded,
    NoteSpeech,
    NoteTransfer,
    Play,
    Pressed,
    RecordMessage,
    Said,
    Store,
    Stored,
    Transfer,
    TransferResult,
)
from safecall.ivr import load_flow
from safecall.settings import defaults_root
from safecall.speech import Verdict

FLOW = load_flow(defaults_root() / "ivr", "safe-call")
T = FLOW.input_timeout_seconds


def ask(key: str, speech: bool = True) -> Ask:
    return Ask(f"prompt-{key}", FLOW.prompts[key], T, speech)


def thanks(outcome: str, closing: str) -> Closing:
    return Closing(outcome, f"closing-{closing}", FLOW.closings[closing])


NO_ANSWER = Closing(None, "closing-no_input", FLOW.closings["no_input"])
REFUSED, FAILED = Claimed(False), Stored(False)
CLAIMED, STORED = Claimed(True), Stored(True)

# (case, inbound, listens, [(event, the actions it calls for)]): a whole call, step by step.
TABLE = [
    (
        "a placed call claims its one IVR session first, then asks; a 1 is stored, then thanked",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Pressed("1"), (Store("acknowledged", "1"),)),
            (STORED, (thanks("acknowledged", "thanks_well"), HANG_UP)),
        ],
    ),
    (
        "a session the attempt does not grant hangs up unheard",
        False,
        True,
        [(ANSWERED, (Claim(),)), (REFUSED, (HANG_UP,)), (Pressed("1"), ())],
    ),
    (
        "an answer that could not be stored ends the call without thanks",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Pressed("1"), (Store("acknowledged", "1"),)),
            (FAILED, (HANG_UP_UNSTORED,)),
            (STORED, ()),
        ],
    ),
    (
        "key 2 is help",
        False,
        False,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting", False),)),
            (Pressed("2"), (Store("help_requested", "2"),)),
            (STORED, (thanks("help_requested", "thanks_help"), HANG_UP)),
        ],
    ),
    (
        "only a whole key of the flow counts: '12', an injection, '#' are asked again",
        False,
        False,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting", False),)),
            (Pressed("12"), (ask("invalid", False),)),
            (Pressed("1' OR 1=1--"), (ask("invalid", False),)),
            (Pressed("#"), (NO_ANSWER, HANG_UP)),
        ],
    ),
    (
        "no key: the question twice more, then the no-answer closing, never an acknowledgement",
        False,
        False,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting", False),)),
            (NO_INPUT, (ask("repeat", False),)),
            (NO_INPUT, (ask("repeat", False),)),
            (NO_INPUT, (NO_ANSWER, HANG_UP)),
        ],
    ),
    (
        "a call-back's session is its own: no claim; its end is recorded with its IVR, before the thanks",
        True,
        False,
        [
            (ANSWERED, (ask("greeting", False),)),
            (Pressed("1"), (Store("acknowledged", "1"),)),
            (STORED, (END, thanks("acknowledged", "thanks_well"), HANG_UP)),
            (HUNG_UP, ()),
        ],
    ),
    (
        "a call-back whose answer could not be stored ends, without thanks",
        True,
        False,
        [
            (ANSWERED, (ask("greeting", False),)),
            (Pressed("2"), (Store("help_requested", "2"),)),
            (FAILED, (END, HANG_UP_UNSTORED)),
        ],
    ),
    (
        "a call-back without an answer ends with its IVR",
        True,
        False,
        [
            (ANSWERED, (ask("greeting", False),)),
            (NO_INPUT, (ask("repeat", False),)),
            (NO_INPUT, (ask("repeat", False),)),
            (NO_INPUT, (END, NO_ANSWER, HANG_UP)),
        ],
    ),
    (
        "a call-back hung up mid-question still ends",
        True,
        False,
        [(ANSWERED, (ask("greeting", False),)), (HUNG_UP, (END,)), (Pressed("1"), ())],
    ),
    (
        "a placed call hung up mid-question: the line reports its end",
        False,
        False,
        [(ANSWERED, (Claim(),)), (CLAIMED, (ask("greeting", False),)), (HUNG_UP, ()), (Pressed("1"), ())],
    ),
    (
        "a spoken wellness answer is stored with what was heard",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Said("네 괜찮아요", 0.9), (Store("acknowledged", "speech", ("네 괜찮아요", 0.9)),)),
            (STORED, (thanks("acknowledged", "thanks_well"), HANG_UP)),
        ],
    ),
    (
        "distress said aloud is help, as key 2 is",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Said("도와주세요", 0.8), (Store("help_requested", "speech", ("도와주세요", 0.8)),)),
            (STORED, (thanks("help_requested", "thanks_help"), HANG_UP)),
        ],
    ),
    (
        "unclear speech is kept for the officer: asked again, then keys only, then no answer",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Said("여보세요", 0.95), (NoteSpeech("여보세요", 0.95), ask("repeat"))),
            (Said("몰라요", 0.9), (NoteSpeech("몰라요", 0.9), ask("repeat", False))),
            (Said("네", 0.99), (NO_ANSWER, HANG_UP)),
        ],
    ),  # speech is no longer offered, nor heard
    (
        "after unclear speech, a key still counts on the keys-only question",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Said("네", 0.2), (NoteSpeech("네", 0.2), ask("repeat"))),
            (Said("누구세요?", 0.9), (NoteSpeech("누구세요?", 0.9), ask("repeat", False))),
            (Pressed("2"), (Store("help_requested", "2"),)),
            (STORED, (thanks("help_requested", "thanks_help"), HANG_UP)),
        ],
    ),
    (
        "nothing heard is no input, and nothing is kept",
        False,
        True,
        [
            (ANSWERED, (Claim(),)),
            (CLAIMED, (ask("greeting"),)),
            (Said("  ", 0.0), (ask("repeat"),)),
            (Said("", 0.0), (ask("repeat"),)),
            (NO_INPUT, (NO_ANSWER, HANG_UP)),
        ],
    ),
    (
        "a trunk that cannot hear never offers or judges speech",
        False,
        False,
        [(ANSWERED, (Claim(),)), (CLAIMED, (ask("greeting", False),)), (Said("네", 0.99), (ask("repeat", False),))],
    ),
    (
        "events out of turn change nothing",
        False,
        True,
        [
            (Pressed("1"), ()),
            (STORED, ()),
            (ANSWERED, (Claim(),)),
            (Pressed("1"), ()),
            (ANSWERED, ()),
            (CLAIMED, (ask("greeting"),)),
            (CLAIMED, ()),
            (STORED, ()),
            (Pressed("1"), (Store("acknowledged", "1"),)),
            (Pressed("2"), ()),
            (STORED, (thanks("acknowledged", "thanks_well"), HANG_UP)),
        ],
    ),
]


@pytest.mark.parametrize("case, inbound, listens, steps", TABLE, ids=[row[0] for row in TABLE])
def test_the_conversation_decides_every_step_of_a_call(case, inbound, listens, steps):
    conversation = Conversation(FLOW, listens=listens, inbound=inbound)
    for i, (event, expected) in enumerate(steps):
        assert conversation.handle(event) == expected, (case, i, event)
    ended = any(
        e == HUNG_UP or any(isinstance(a, Closing) or a in (HANG_UP, HANG_UP_UNSTORED, END) for a in actions)
        for e, actions in steps
    )
    assert conversation.over == ended


def test_thanks_come_only_after_a_stored_answer():
    # Over every path through the table: no Closing that thanks for an answer unless Stored(True) came just before.
    for case, _inbound, _listens, steps in TABLE:
        previous = None
        for event, actions in steps:
            if any(isinstance(a, Closing) and a.outcome for a in actions):
                assert event == STORED, case
            previous = event
        assert previous is not None


def test_after_the_keys_only_question_anything_but_a_key_is_no_answer_even_with_repeats_left():
    patient = FLOW.model_copy(update={"repeats_on_no_input": 5})
    for last in (NO_INPUT, Pressed("9"), Said("네", 0.99)):
        conversation = Conversation(patient, listens=True, inbound=True)
        assert conversation.handle(ANSWERED)[0].speech is True
        assert conversation.handle(Said("여보세요", 0.9))[1].speech is True
        assert conversation.handle(Said("누구세요", 0.9))[1].speech is False
        assert conversation.handle(last) == (END, Closing(None, "closing-no_input", FLOW.closings["no_input"]), HANG_UP)
    # Without unclear speech, the flow's repeats hold as before.
    conversation = Conversation(patient, listens=True, inbound=True)
    conversation.handle(ANSWERED)
    assert [conversation.handle(NO_INPUT)[0].prompt for _ in range(5)] == ["prompt-repeat"] * 5


def test_a_twilio_style_resumed_conversation_goes_on_from_its_carried_state():
    # The second unclear answer, carried in the URL as asked=2&unclear=1: keys only next.
    conversation = Conversation(FLOW, listens=True, asked=2, unclear=1, waiting=WAIT_REPLY)
    assert conversation.handle(Said("여보세요", 0.9)) == (NoteSpeech("여보세요", 0.9), ask("repeat", False))
    assert (conversation.asked, conversation.unclear, conversation.keys_only) == (3, 2, True)
    resumed = Conversation(FLOW, listens=True, asked=3, unclear=2, keys_only=True, waiting=WAIT_REPLY)
    assert resumed.handle(Pressed("9")) == (NO_ANSWER, HANG_UP)
    # Repeats bound the questions, whatever was heard: the last question's unclear answer is no answer.
    last = Conversation(FLOW, listens=True, asked=3, unclear=0, waiting=WAIT_REPLY)
    assert last.handle(Said("여보세요", 0.9)) == (NoteSpeech("여보세요", 0.9), NO_ANSWER, HANG_UP)


def test_spoken_answers_go_through_the_judge_and_its_risk_is_passed_on(monkeypatch):
    heard = []

    def judge(answers, text, confidence):
        heard.append((answers, text, confidence))
        return Verdict("help_requested", "words of risk", risk=True)

    monkeypatch.setattr(conversation_module, "judge", judge)
    conversation = Conversation(FLOW, listens=True, asked=1, waiting=WAIT_REPLY)
    assert conversation.handle(Said("네 괜찮아요", 0.9)) == (
        Store("help_requested", "speech", ("네 괜찮아요", 0.9), risk=True),
    )
    assert heard == [(FLOW.speech, "네 괜찮아요", 0.9)]


def test_a_flow_without_spoken_answers_offers_keys_only():
    flow = FLOW.model_copy(update={"speech": None})
    conversation = Conversation(flow, listens=True, inbound=True)
    [question] = conversation.handle(ANSWERED)
    assert question.speech is False and conversation.handle(Said("네", 0.99))[0].speech is False


# ---- a human on "help" (issue 30, item 1) ----

HELP = FLOW.help.model_copy(
    update={"enabled": True, "transfer_number": "+82221480000", "ring_seconds": 25, "message_seconds": 45}
)
HELP_FLOW = FLOW.model_copy(update={"help": HELP})
PUT_THROUGH = (Play("prompt-help_transfer", FLOW.prompts["help_transfer"]), Transfer("+82221480000", 25))
NO_OFFICER = (Play("prompt-help_no_officer", FLOW.prompts["help_no_officer"]), RecordMessage(45))
AFTER_HOURS = (Play("prompt-help_message", FLOW.prompts["help_message"]), RecordMessage(45))
MESSAGE_THANKS = thanks("help_requested", "help_message_thanks")
HELP_THANKS = thanks("help_requested", "thanks_help")
KEY_2 = [(ANSWERED, (Claim(),)), (CLAIMED, (ask("greeting", False),)), (Pressed("2"), (Store("help_requested", "2"),))]

# (case, office_open, with_officer, inbound, steps after key 2 was pressed and its Store asked for)
HELP_TABLE = [
    (
        "in office hours the stored help is put through; a connected transfer is kept and the call ends",
        True,
        False,
        False,
        [(STORED, PUT_THROUGH), (TransferResult("connected", 42.0), (NoteTransfer("connected", 42.0), HANG_UP))],
    ),
    (
        "nobody answers within the ring time: kept, then the message, which is kept before the thanks",
        True,
        False,
        False,
        [
            (STORED, PUT_THROUGH),
            (TransferResult("no_answer"), (NoteTransfer("no_answer"),) + NO_OFFICER),
            (
                MessageRecorded("/var/spool/asterisk/safecall/help-1.wav", 12.5),
                (KeepMessage("/var/spool/asterisk/safecall/help-1.wav", 12.5), MESSAGE_THANKS, HANG_UP),
            ),
        ],
    ),
    (
        "a busy officer: the message",
        True,
        False,
        False,
        [
            (STORED, PUT_THROUGH),
            (TransferResult("busy"), (NoteTransfer("busy"),) + NO_OFFICER),
            (MessageRecorded(None, 0), (HELP_THANKS, HANG_UP)),
        ],
    ),
    (
        "a failed transfer (or a result no trunk should give) goes to the message",
        True,
        False,
        False,
        [
            (STORED, PUT_THROUGH),
            (TransferResult("exploded"), (NoteTransfer("failed"),) + NO_OFFICER),
            (MessageRecorded("/tmp/m.wav", 4), (KeepMessage("/tmp/m.wav", 4), MESSAGE_THANKS, HANG_UP)),
        ],
    ),
    (
        "outside office hours: straight to the message",
        False,
        False,
        False,
        [
            (STORED, AFTER_HOURS),
            (TransferResult("connected"), ()),
            (MessageRecorded("twilio:AC1/RE1", 3), (KeepMessage("twilio:AC1/RE1", 3), MESSAGE_THANKS, HANG_UP)),
        ],
    ),
    (
        "nothing recorded: no message is kept, and help is thanked as ever",
        False,
        False,
        False,
        [(STORED, AFTER_HOURS), (MessageRecorded(None, 0), (HELP_THANKS, HANG_UP))],
    ),
    (
        "an empty recording is no message",
        False,
        False,
        False,
        [(STORED, AFTER_HOURS), (MessageRecorded("/tmp/x.wav", 0), (HELP_THANKS, HANG_UP))],
    ),
    (
        "a hangup while ringing the officer ends the call (the help was stored before)",
        True,
        False,
        False,
        [(STORED, PUT_THROUGH), (HUNG_UP, ()), (TransferResult("connected"), ())],
    ),
    (
        "a hangup during the message ends the call",
        False,
        False,
        False,
        [(STORED, AFTER_HOURS), (HUNG_UP, ()), (MessageRecorded("/tmp/x.wav", 2), ())],
    ),
    (
        "a call with the officer already is never put through to them again",
        True,
        True,
        False,
        [(STORED, (HELP_THANKS, HANG_UP))],
    ),
    (
        "help that could not be stored: neither transfer nor message",
        True,
        False,
        False,
        [(FAILED, (HANG_UP_UNSTORED,))],
    ),
    (
        "a call-back's help: put through too, and its end recorded when it is over",
        True,
        False,
        True,
        [(STORED, PUT_THROUGH), (TransferResult("connected"), (END, NoteTransfer("connected"), HANG_UP))],
    ),
]


@pytest.mark.parametrize(
    "case, office_open, with_officer, inbound, steps", HELP_TABLE, ids=[row[0] for row in HELP_TABLE]
)
def test_help_is_put_through_to_the_officer_or_left_as_a_message(case, office_open, with_officer, inbound, steps):
    conversation = Conversation(
        HELP_FLOW, listens=False, inbound=inbound, office_open=office_open, with_officer=with_officer
    )
    opening = KEY_2[1:] if inbound else KEY_2
    if inbound:
        opening = [(ANSWERED, (ask("greeting", False),)), opening[-1]]
    for event, expected in opening + steps:
        assert conversation.handle(event) == expected, (case, event)
    assert conversation.over


def test_help_stays_thanked_only_while_the_flow_has_it_off_and_acknowledgements_never_transfer():
    # The shipped flow has [help] with enabled = false: key 2 is thanked as before.
    assert FLOW.help is not None and FLOW.help_line is None
    conversation = Conversation(FLOW, listens=False, office_open=True)
    for event, expected in KEY_2 + [(STORED, (HELP_THANKS, HANG_UP))]:
        assert conversation.handle(event) == expected
    # Turned on, a 1 is thanked, never put through.
    conversation = Conversation(HELP_FLOW, listens=False, office_open=True)
    conversation.handle(ANSWERED), conversation.handle(CLAIMED), conversation.handle(Pressed("1"))
    assert conversation.handle(STORED) == (thanks("acknowledged", "thanks_well"), HANG_UP)


def test_without_a_transfer_number_help_is_a_message_even_in_office_hours():
    flow = FLOW.model_copy(update={"help": HELP.model_copy(update={"transfer_number": ""})})
    conversation = Conversation(flow, listens=False, office_open=True)
    for event, _ in KEY_2:
        conversation.handle(event)
    assert conversation.handle(STORED) == AFTER_HOURS and conversation.waiting == WAIT_MESSAGE


def test_spoken_distress_is_put_through_as_key_2_is():
    conversation = Conversation(HELP_FLOW, listens=True, office_open=True)
    conversation.handle(ANSWERED), conversation.handle(CLAIMED)
    assert conversation.handle(Said("도와주세요", 0.8)) == (Store("help_requested", "speech", ("도와주세요", 0.8)),)
    assert conversation.handle(STORED) == PUT_THROUGH and conversation.waiting == WAIT_TRANSFER


def test_a_twilio_style_conversation_resumes_at_the_transfer_and_at_the_message():
    resumed = Conversation(HELP_FLOW, listens=True, waiting=WAIT_TRANSFER)
    assert resumed.handle(TransferResult("no_answer")) == (NoteTransfer("no_answer"),) + NO_OFFICER
    resumed = Conversation(HELP_FLOW, listens=True, inbound=True, waiting=WAIT_MESSAGE)
    assert resumed.handle(MessageRecorded("twilio:AC1/RE1", 9)) == (
        END,
        KeepMessage("twilio:AC1/RE1", 9),
        MESSAGE_THANKS,
        HANG_UP,
    )
