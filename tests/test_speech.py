"""The spoken-answer judge (safecall/speech.py) on the shipped flow, and on a labelled corpus of Korean answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import SPEECH_FIGURES

from safecall.conversation import STORED, WAIT_REPLY, Conversation, Said
from safecall.ivr import load_flow
from safecall.speech import Verdict, judge

DEFAULTS = Path(__file__).parent.parent / "safecall" / "defaults" / "ivr"
CORPUS = Path(__file__).parent / "fixtures" / "speech" / "answers.tsv"  # the flow's lists were tuned on most of it
# Written and labelled by a second reviewer before the judge was run on it; see its header and docs/twilio.md.
HELDOUT = Path(__file__).parent / "fixtures" / "speech" / "heldout.tsv"


@pytest.fixture(scope="module")
def answers():
    return load_flow(DEFAULTS, "safe-call").speech


def read_corpus(corpus: Path = CORPUS) -> list[tuple[str, float, str, str]]:
    rows = []
    for number, line in enumerate(corpus.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, confidence, expected, category = line.split("\t")
        assert expected in ("acknowledged", "help_requested", "unclear"), f"{corpus}:{number}: {expected!r}"
        rows.append((text, float(confidence), expected, category))
    return rows


@pytest.mark.parametrize(
    "text",
    [
        "네 살려주세요",
        "예 쓰러졌어요",
        "네 119 불러주세요",
        "예 숨이 차요",
        "네 괜찮지 않아요",
        "네 괜찮은데 허리가 아파요",
    ],
)
def test_the_issues_distress_and_negations_are_help(answers, text):
    assert judge(answers, text, 0.9).outcome == "help_requested"


@pytest.mark.parametrize(
    "text",
    [
        "괜찮아요 아닙니다",
        "네 아니에요",
        "네 말씀하세요",
        "네 여보세요",
        "네? 뭐라고요?",
        "네 제가 딸인데요",
        "누구세요",
        "어머니 안 계세요",
        "네 근데요",
        "몰라요",
    ],
)
def test_the_issues_non_answers_are_unclear(answers, text):
    assert judge(answers, text, 0.9).outcome == "unclear"


def test_a_yes_inside_a_word_is_not_a_yes(answers):
    assert judge(answers, "힘드네요", 0.9).outcome == "help_requested"  # 힘들다, not 네
    assert judge(answers, "비가 오네요", 0.9).outcome == "unclear"


@pytest.mark.parametrize(
    "text", ["네", "예", "괜찮아요", "네 잘 지내요", "아픈 데 없어요", "별일 없어요", "안 아파요 괜찮아요"]
)
def test_plain_wellness_is_acknowledged(answers, text):
    verdict = judge(answers, text, 0.9)
    assert verdict == Verdict("acknowledged", verdict.reason) and verdict.reason and not verdict.risk


@pytest.mark.parametrize(
    "text",
    [
        "네 괜찮을 거예요",
        "괜찮겠죠",
        "괜찮았으면 좋겠어요",
        "잘 지내야죠",
        "네 잘 지낼게요",  # a guess, a wish, a duty
        "좋았어요",
        "맞았어요",
        "어제 맞았어요",
        "아무 일 없었어요",
        "안 아팠어요",  # the past (맞았어요: also "I was hit")
        "아프지는 않아요",
        "네 다치지는 않았어요",  # a contrast: not that, but ...
        "괜찮은 척해요",
        "괜찮은 편이에요",
        "안 아픈데요",
        "괜찮습니다만",  # a bound noun that hedges, "..., but"
        "네 괜찮대요",
        "괜찮으시대요",
        "괜찮다고 했어요",
        "괜찮으세요",
        "잘 지내세요",
    ],
)  # someone else's, or the caller's
def test_a_statement_of_being_well_that_is_not_plain_is_not_acknowledged(answers, text):
    verdict = judge(answers, text, 0.9)
    assert verdict.outcome == "unclear" and "단정이 아님" in verdict.reason, verdict


@pytest.mark.parametrize(
    "text",
    ["네 허리가", "예 가슴이", "네 너무", "네 그냥", "네 며칠째", "네 아이고", "네 허리가 좀", "네 그럭저럭 지내요"],
)
def test_a_yes_that_trails_off_into_a_neutral_word_is_not_acknowledged(answers, text):
    """Neutral words are neutral beside a statement, not in its place: "네 허리가" was cut off, or points to pain."""
    assert judge(answers, text, 0.9).outcome == "unclear"


@pytest.mark.parametrize("text", ["지금은 괜찮아요", "몸은 괜찮아요", "오늘은 잘 지내요"])
def test_a_contrast_on_a_neutral_word_is_not_acknowledged(answers, text):
    verdict = judge(answers, text, 0.9)
    assert verdict.outcome == "unclear" and "대조" in verdict.reason, verdict


@pytest.mark.parametrize(
    "text", ["걱정 마세요", "저는 괜찮아요", "예 괜찮아요 걱정 마시고요", "걱정 안 하셔도 돼요", "네 괜찮습니다"]
)
def test_a_plain_statement_said_to_the_caller_is_still_acknowledged(answers, text):
    assert judge(answers, text, 0.9).outcome == "acknowledged"


@pytest.mark.parametrize(
    "text", ["살고 싶지 않아요", "그만 살고 싶어요", "사는 게 의미가 없어요", "숨이 막혀요", "응급실이에요"]
)
def test_indirect_words_of_suicide_and_emergencies_are_risk(answers, text):
    verdict = judge(answers, text, 0.9)
    assert (verdict.outcome, verdict.risk) == ("help_requested", True), verdict


@pytest.mark.parametrize("confidence", [math.nan, -0.1, 1.01, math.inf, 0.49, 0.0])
def test_an_unsure_or_impossible_confidence_is_unclear(answers, confidence):
    verdict = judge(answers, "네 괜찮아요", confidence)
    assert verdict.outcome == "unclear" and "신뢰도" in verdict.reason


def test_a_long_or_strange_text_is_unclear_not_an_error(answers):
    assert judge(answers, "네 괜찮아요 " * 60, 0.9).outcome == "unclear"
    for text in ("ㅋㅋㅋ", "OK", "1", "!!!", "\x00\u202e", "   "):
        assert judge(answers, text, 0.9).outcome == "unclear", text
    assert judge(answers, "네" * 50, 0.9).outcome in ("unclear", "acknowledged")  # judged, not an error


def test_words_of_suicide_or_an_emergency_are_risk_and_help(answers):
    for text in (
        "죽고 싶어요",
        "네 119 불러주세요",
        "불이 났어요",
        "가스 냄새가 나요",
        "살려주세요",
        "괜찮은데 죽고 싶어요",
    ):
        verdict = judge(answers, text, 0.9)
        assert (verdict.outcome, verdict.risk) == ("help_requested", True), text
        assert "위험 발언" in verdict.reason
    assert not judge(answers, "허리가 아파요", 0.9).risk
    assert not judge(answers, "네 괜찮아요", 0.9).risk


def test_the_reason_says_why(answers):
    assert "부정" in judge(answers, "네 괜찮지 않아요", 0.9).reason
    assert "질문" in judge(answers, "네? 뭐라고요?", 0.9).reason
    assert "여보세요" in judge(answers, "네 여보세요", 0.9).reason
    assert "모르는 말" in judge(answers, "네 텃밭에 있어요", 0.9).reason


def test_the_conversation_records_the_judges_outcome_and_asks_again_when_unclear():
    flow = load_flow(DEFAULTS, "safe-call")
    conversation = Conversation(flow, listens=True, asked=1, waiting=WAIT_REPLY)
    [store] = conversation.handle(Said("네 괜찮은데 허리가 아파요", 0.9))
    assert (store.outcome, store.digit) == ("help_requested", "speech")
    assert conversation.handle(STORED)[0].closing == "closing-thanks_help"
    conversation = Conversation(flow, listens=True, asked=1, waiting=WAIT_REPLY)
    assert conversation.handle(Said("네 제가 딸인데요", 0.9))[-1].prompt == "prompt-repeat"


@pytest.mark.parametrize(("corpus", "least"), [(CORPUS, 300), (HELDOUT, 150)], ids=["corpus", "heldout"])
def test_the_labelled_corpus_meets_its_targets(answers, request, corpus, least):
    rows = read_corpus(corpus)
    assert len(rows) >= least
    if corpus == HELDOUT:  # held out: each answer once, and none that the lists were tuned on
        assert len({text for text, *_ in rows}) == len(rows)
        assert not {text for text, *_ in rows} & {text for text, *_ in read_corpus(CORPUS)}
    wrongly_well, judged, categories = [], Counter(), Counter()
    for text, confidence, expected, category in rows:
        outcome = judge(answers, text, confidence).outcome
        judged[(expected, outcome)] += 1
        categories[(category, outcome == expected)] += 1
        if outcome == "acknowledged" and expected != "acknowledged":
            wrongly_well.append(text)
    help_rows = sum(n for (expected, _), n in judged.items() if expected == "help_requested")
    well_rows = sum(n for (expected, _), n in judged.items() if expected == "acknowledged")
    unclear_rows = sum(n for (expected, _), n in judged.items() if expected == "unclear")
    help_rate = judged[("help_requested", "help_requested")] / help_rows
    well_rate = judged[("acknowledged", "acknowledged")] / well_rows
    figures = [
        f"{corpus.name}: {len(rows)} answers: {help_rows} distress or need, {well_rows} plain wellness, "
        f"{unclear_rows} non-answers or unclear",
        f"distress or need -> help: {judged[('help_requested', 'help_requested')]}/{help_rows} ({help_rate:.1%}); "
        f"-> unclear {judged[('help_requested', 'unclear')]}; "
        f"-> acknowledged {judged[('help_requested', 'acknowledged')]}",
        f"plain wellness -> acknowledged: {judged[('acknowledged', 'acknowledged')]}/{well_rows} ({well_rate:.1%}); "
        f"-> unclear {judged[('acknowledged', 'unclear')]}; -> help {judged[('acknowledged', 'help_requested')]}",
        f"non-answers -> unclear: {judged[('unclear', 'unclear')]}/{unclear_rows}; "
        f"-> help {judged[('unclear', 'help_requested')]}; "
        f"-> acknowledged {judged[('unclear', 'acknowledged')]}",
        "by category (right/all): "
        + ", ".join(
            f"{c} {categories[(c, True)]}/{categories[(c, True)] + categories[(c, False)]}"
            for c in sorted({c for c, _ in categories})
        ),
    ]
    request.node.user_properties.append((SPEECH_FIGURES, figures))
    print("\n".join(figures))
    assert wrongly_well == [], "distress or non-answers recorded as well"
    assert help_rate >= 0.95
    assert well_rate >= 0.90


# ---- safecall ivr try ----


def test_ivr_try_says_what_the_shipped_flow_records_and_why_in_korean(cli):
    cli.use_locale("ko_KR.UTF-8")
    out = cli("ivr", "try", "safe-call", "--said", "네 괜찮은데 허리가 아파요").output
    assert '"네 괜찮은데 허리가 아파요" (90%): 도움 요청으로 기록, 이어서 closing-thanks_help' in out
    assert "  도움 요청: '아파'" in out
    out = cli("ivr", "try", "safe-call", "--said", "네 여보세요", "--confidence", "0.95").output
    assert "불분명: 아무것도 기록하지 않고 다시 묻습니다" in out and "prompt-repeat" in out
    out = cli("ivr", "try", "safe-call", "--said", "살려주세요").output
    assert "위험 발언" in out and "당직 공무원에게 바로 알립니다" in out


def test_ivr_try_json_lines_from_a_file(cli, tmp_path):
    answers = tmp_path / "answers.txt"
    answers.write_text("네 잘 지내요\t0.83\n\n네\tnan\n예 쓰러졌어요\n네\t0.2\n", encoding="utf-8")
    lines = cli("ivr", "try", "safe-call", "--from", str(answers), "--format", "json").output.splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["said"], r["confidence"], r["outcome"], r["records"], r["risk"]) for r in records] == [
        ("네 잘 지내요", 0.83, "acknowledged", "acknowledged", False),
        ("네", "nan", "unclear", None, False),
        ("예 쓰러졌어요", 0.9, "help_requested", "help_requested", True),
        ("네", 0.2, "unclear", None, False),
    ]
    assert all(r["reason"] for r in records)
    assert records[0]["then"] == "closing-thanks_well" and records[1]["then"] == "prompt-repeat"


def test_ivr_try_on_an_offices_edited_flow_a_dialect_word_changes_the_result(cli):
    said = ["ivr", "try", "safe-call", "--said", "예 괜찮십니더예", "--format", "json"]
    before = json.loads(cli(*said).output)
    assert before["outcome"] == "unclear" and "모르는 말" in before["reason"]
    flow = cli.root / "ivr" / "safe-call.toml"
    text = flow.read_text(encoding="utf-8")
    assert "acknowledged = [\n" in text
    flow.write_text(text.replace("acknowledged = [\n", 'acknowledged = [\n    "괜찮십니더예",\n'), encoding="utf-8")
    after = json.loads(cli(*said).output)
    assert (after["outcome"], after["reason"].startswith("안부 확인")) == ("acknowledged", True)
    # and a word an office marks as a call for help turns an unknown answer into help
    said = ["ivr", "try", "safe-call", "--said", "속이 디비진다", "--format", "json"]
    assert json.loads(cli(*said).output)["outcome"] == "unclear"
    flow.write_text(
        flow.read_text(encoding="utf-8").replace("help_requested = [\n", 'help_requested = [\n    "속이 디비진다",\n'),
        encoding="utf-8",
    )
    assert json.loads(cli(*said).output)["outcome"] == "help_requested"


def test_the_analyser_is_not_loaded_for_help():
    """`safecall --help` must not pay for the model: it is loaded on the first answer judged."""
    code = (
        "import sys; from safecall.cli import create_app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(create_app(), ['ivr', '--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in sys.modules if m.startswith('kiwipiepy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_ivr_try_refuses_bad_input_clearly(cli, tmp_path):
    result = cli("ivr", "try", "safe-call", ok=False)
    assert result.exit_code != 0 and "--said" in result.output and "--from" in result.output
    result = cli("ivr", "try", "no-such-flow", "--said", "네", ok=False)
    assert result.exit_code != 0 and "no-such-flow" in result.output
    answers = tmp_path / "answers.txt"
    answers.write_text("네\t0.9\n괜찮아요\t높음\n", encoding="utf-8")
    result = cli("ivr", "try", "safe-call", "--from", str(answers), ok=False)
    assert result.exit_code != 0 and f"{answers}:2" in result.output and "높음" in result.output


def test_a_flow_that_listens_needs_a_digit_for_help(tmp_path):
    """The judge can hear a call for help in any answer ("괜찮지 않아요"), so a listening flow needs its closing."""
    from safecall.errors import ConfigError

    text = (DEFAULTS / "safe-call.toml").read_text(encoding="utf-8")
    without_help_key = text.replace('2 = { outcome = "help_requested", closing = "thanks_help" }\n', "")
    assert without_help_key != text
    (tmp_path / "safe-call.toml").write_text(without_help_key, encoding="utf-8")
    with pytest.raises(ConfigError, match="no digit means 'help_requested'"):
        load_flow(tmp_path, "safe-call")
