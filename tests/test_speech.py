"""The spoken-answer judge (safecall/speech.py) on the shipped flow, and on a labelled corpus of Korean answers."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from conftest import SPEECH_FIGURES
from safecall.ivr import IvrState, Said, load_flow, step
from safecall.speech import Verdict, judge

DEFAULTS = Path(__file__).parent.parent / "safecall" / "defaults" / "ivr"
CORPUS = Path(__file__).parent / "fixtures" / "speech" / "answers.tsv"


@pytest.fixture(scope="module")
def answers():
    return load_flow(DEFAULTS, "safe-call").speech


def read_corpus() -> list[tuple[str, float, str, str]]:
    rows = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, confidence, expected, category = line.split("\t")
        assert expected in ("acknowledged", "help_requested", "unclear"), f"{CORPUS}:{number}: {expected!r}"
        rows.append((text, float(confidence), expected, category))
    return rows


@pytest.mark.parametrize("text", [
    "네 살려주세요", "예 쓰러졌어요", "네 119 불러주세요", "예 숨이 차요", "네 괜찮지 않아요", "네 괜찮은데 허리가 아파요"])
def test_the_issues_distress_and_negations_are_help(answers, text):
    assert judge(answers, text, 0.9).outcome == "help_requested"


@pytest.mark.parametrize("text", [
    "괜찮아요 아닙니다", "네 아니에요", "네 말씀하세요", "네 여보세요", "네? 뭐라고요?", "네 제가 딸인데요", "누구세요",
    "어머니 안 계세요", "네 근데요", "몰라요"])
def test_the_issues_non_answers_are_unclear(answers, text):
    assert judge(answers, text, 0.9).outcome == "unclear"


def test_a_yes_inside_a_word_is_not_a_yes(answers):
    assert judge(answers, "힘드네요", 0.9).outcome == "help_requested"  # 힘들다, not 네
    assert judge(answers, "비가 오네요", 0.9).outcome == "unclear"


@pytest.mark.parametrize("text", ["네", "예", "괜찮아요", "네 잘 지내요", "아픈 데 없어요", "별일 없어요", "안 아파요 괜찮아요"])
def test_plain_wellness_is_acknowledged(answers, text):
    verdict = judge(answers, text, 0.9)
    assert verdict == Verdict("acknowledged", verdict.reason) and verdict.reason and not verdict.risk


@pytest.mark.parametrize("confidence", [math.nan, -0.1, 1.01, math.inf, 0.49, 0.0])
def test_an_unsure_or_impossible_confidence_is_unclear(answers, confidence):
    verdict = judge(answers, "네 괜찮아요", confidence)
    assert verdict.outcome == "unclear" and "신뢰도" in verdict.reason


def test_words_of_suicide_or_an_emergency_are_risk_and_help(answers):
    for text in ("죽고 싶어요", "네 119 불러주세요", "불이 났어요", "가스 냄새가 나요", "살려주세요", "괜찮은데 죽고 싶어요"):
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


def test_step_records_the_judges_outcome_and_asks_again_when_unclear():
    flow = load_flow(DEFAULTS, "safe-call")
    _, action = step(flow, IvrState(asked=1), Said("네 괜찮은데 허리가 아파요", 0.9))
    assert (action.outcome, action.digit, action.prompt if hasattr(action, "prompt") else action.closing) == (
        "help_requested", None, "closing-thanks_help")
    _, action = step(flow, IvrState(asked=1), Said("네 제가 딸인데요", 0.9))
    assert action.prompt == "prompt-repeat"


def test_the_labelled_corpus_meets_its_targets(answers, request):
    rows = read_corpus()
    assert len(rows) >= 300
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
        f"{len(rows)} answers: {help_rows} distress or need, {well_rows} plain wellness, {unclear_rows} non-answers or unclear",
        f"distress or need -> help: {judged[('help_requested', 'help_requested')]}/{help_rows} ({help_rate:.1%}); "
        f"-> unclear {judged[('help_requested', 'unclear')]}; -> acknowledged {judged[('help_requested', 'acknowledged')]}",
        f"plain wellness -> acknowledged: {judged[('acknowledged', 'acknowledged')]}/{well_rows} ({well_rate:.1%}); "
        f"-> unclear {judged[('acknowledged', 'unclear')]}; -> help {judged[('acknowledged', 'help_requested')]}",
        f"non-answers -> unclear: {judged[('unclear', 'unclear')]}/{unclear_rows}; -> help {judged[('unclear', 'help_requested')]}; "
        f"-> acknowledged {judged[('unclear', 'acknowledged')]}",
        "by category (right/all): " + ", ".join(
            f"{c} {categories[(c, True)]}/{categories[(c, True)] + categories[(c, False)]}"
            for c in sorted({c for c, _ in categories})),
    ]
    request.config.stash[SPEECH_FIGURES] = figures
    print("\n".join(figures))
    assert wrongly_well == [], "distress or non-answers recorded as well"
    assert help_rate >= 0.95
    assert well_rate >= 0.90
