"""The spoken-answer judge: what a recognised Korean answer means, and only clear evidence means well.

judge(answers, text, confidence) -> Verdict. The phrase lists come from the flow file ([speech], so an office
can add its dialect's words); the rules are here. Both the answer and every phrase are split into morphemes by
Kiwi (kiwipiepy, which ships its model), so "괜찮지 않아요", "안 괜찮아요" and "괜찮은 거 아니에요" are all
a negated 괜찮다, and "네" does not match the ending of "힘드네요".

The rules, in order:
- a confidence below the flow's floor, outside 0..1 or NaN, or nothing heard: unclear;
- words of suicide or an emergency (`risk`): help, with risk=True;
- distress or a need (`help_requested`; a negated wellness word; a lacking necessity, "약이 없어요"; a negated
  everyday activity, "밥을 못 먹었어요"; trouble that is there, "아픈 데가 있어요"): help, whatever else was said;
- acknowledged only when an affirmative or a plain statement of being well was heard (of oneself, now: not
  past, guessed, wished, contrasted, reported or hedged, see _HEDGE_*) and every other word is neutral: no
  question, no phone-answering or someone else's words, no negation left over, no word the flow does not know;
- unclear otherwise. Unclear is never a guess: the question is asked again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from safecall.domain import Disposition

if TYPE_CHECKING:
    from kiwipiepy import Kiwi

    from safecall.ivr import SpeechAnswers

Outcome = Literal["acknowledged", "help_requested", "unclear"]
MAX_ANSWER = 300  # characters judged; longer is unclear


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str  # short, why (shown by `safecall ivr try` and kept for the officer)
    risk: bool = False  # words of suicide or of an emergency


# One load at a time: a warm-up thread and the first answer must not both read the model (hundreds of MB).
_LOADING = threading.Lock()


def analyser() -> Kiwi:
    """The Korean morphological analyser, loaded on first use (it takes seconds; `safecall --help` must not wait)."""
    with _LOADING:
        return _loaded_analyser()


@lru_cache(maxsize=1)
def _loaded_analyser() -> Kiwi:
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    kiwi.tokenize("네 괜찮아요")  # Kiwi reads the rest of its model on the first analysis: seconds more
    return kiwi


def warm_up() -> threading.Thread:
    """Load the analyser in the background: a trunk that listens starts this, so that the first spoken
    answer is judged within the trunk's webhook timeout (Twilio waits 15 s)."""
    thread = threading.Thread(target=analyser, name="speech-analyser", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Morpheme:
    form: str  # the lemma's stem as Kiwi gives it: 괜찮, 아프, 돕
    kind: str  # V (predicate), N (noun), M (adverb, determiner), I (interjection), S (number, foreign word)
    tag: str  # Kiwi's tag, e.g. VA, EF, SF
    text: str  # as heard
    at: int  # its index among all of Kiwi's tokens, endings included

    def __str__(self) -> str:
        return self.text or self.form


# Endings, particles, affixes, punctuation and the copula carry no meaning the judge needs (questions aside).
_FUNCTION_PREFIXES = ("J", "E", "XS", "XP", "SF", "SP", "SS", "SE", "SO", "SW", "VCP", "Z", "W_")
_KIND_OF = {"V": "V", "N": "N", "M": "M", "I": "I", "S": "S", "X": "N", "U": "N"}
# Negators: 안/못 before a predicate, 않다/못하다/아니다/없다 after it, and "no" on its own.
_PRE_NEGATORS = {("안", "M"), ("못", "M")}
_POST_NEGATORS = {("않", "V"), ("못하", "V"), ("아니", "V")}
_ABSENT = {("없", "V"), ("읎", "V"), ("웂", "V")}
_PRESENT = {("있", "V"), ("많", "V"), ("생기", "V")}
_LACKING = {("없", "V"), ("떨어지", "V"), ("모자라", "V"), ("부족", "N"), ("부족하", "V")}
_NO_WORDS = {("아니요", "I"), ("아뇨", "I"), ("아니", "I"), ("아니오", "I"), ("아니", "M")}
# Question words: whoever asks one is not answering (누구세요, 뭐라고요, 어디세요).
_QUESTION_WORDS = {
    ("누구", "N"),
    ("뭐", "N"),
    ("무엇", "N"),
    ("어디", "N"),
    ("무슨", "M"),
    ("어느", "M"),
    ("왜", "M"),
    ("언제", "N"),
    ("어떻게", "M"),
    ("웬", "M"),
}
_QUESTION_ENDINGS = ("까", "나요", "니", "냐", "는가", "ᆫ가", "은가", "ᆫ가요", "을까")
# What turns a statement of being well into less than one: the past ("괜찮았어요", "맞았어요" is also "I was
# hit"), a guess or a wish ("괜찮겠죠", "괜찮을 거예요", "괜찮았으면"), a duty or a promise ("잘 지내야죠",
# "잘 지낼게요"), a contrast ("아프지는 않아요", "괜찮긴 해요"), someone's words ("괜찮다고 했어요",
# "괜찮대요", "괜찮으시대요"), or a bound
# noun that hedges ("괜찮은 척해요", "괜찮은 편이에요").
_HEDGE_EP = ("었", "았", "였", "겠", "ᆻ")
_HONORIFIC = (
    "시",
    "으시",
    "세요",
    "으세요",
    "셔",
    "으셔",
    "십",
    "으십",
)  # not of oneself: "괜찮으세요", "괜찮으시대요"
_HEDGE_ETM = ("을", "ᆯ", "ㄹ")
_HEDGE_EC = ("면", "으면", "어야", "아야", "야", "다고", "라고", "자고", "냐고", "다는", "라는")
_HEDGE_EF = (
    "어야",
    "아야",
    "야죠",
    "ᆯ게",
    "을게",
    "ᆯ걸",
    "을걸",
    "ᆯ래",
    "을래",
    "다더",
    "대",
    "ᆫ대",
    "는대",
    "래",
    "답니",
    "ᆫ답",
    "는답",
    "단다",
    "ᆫ단다",
    "더라",
    "ᆫ데",
    "는데",
    "은데",
    "던데",
)  # 괜찮은데요: "..., but"
_HEDGE_JX = ("는", "ᆫ", "은")
_HEDGE_NNB = ("척", "체", "편", "듯", "줄", "뻔", "리", "수", "셈", "모양", "터", "양")


def _kind(tag: str) -> str | None:
    """The coarse kind of a content morpheme, or None for a function morpheme."""
    if tag.startswith(_FUNCTION_PREFIXES) and tag not in ("SN", "SL", "SH"):
        return None
    return _KIND_OF.get(tag[0], "N")


def _morphemes(text: str) -> tuple[list[Morpheme], list]:
    tokens = analyser().tokenize(text)
    content = []
    for at, token in enumerate(tokens):
        tag = token.tag.split("-")[0]  # VV-I (irregular) is a VV
        kind = _kind(tag)
        if kind:
            content.append(Morpheme(token.form, kind, tag, text[token.start : token.end], at))
    return content, tokens


@lru_cache(maxsize=4096)
def _pattern(phrase: str) -> tuple[tuple[str, str], ...]:
    """A flow phrase as the content morphemes it must match, in order."""
    return tuple((m.form, m.kind) for m in _morphemes(phrase)[0])


@lru_cache(maxsize=4096)
def _surface(phrase: str) -> str:
    """A flow phrase's content morphemes as written, spaces aside: the fallback where context changes
    Kiwi's analysis ("그럼요" alone is 그럼+요, in an answer one interjection; "네" may be read as 너)."""
    return "".join(m.text for m in _morphemes(phrase)[0]).replace(" ", "")


# What a phrase list says about the words it matches; longer matches win, then the first in this order.
_LISTS = ("risk", "help_requested", "no_trouble", "lacking", "unclear", "activities", "acknowledged", "neutral")


@dataclass
class _Claim:
    list: str
    start: int
    end: int  # exclusive, in content morphemes
    phrase: str
    negators: tuple[int, ...] = ()  # 안/못 inside the match: "잘 못 지내요" is a negated "잘 지내요"


def _match(pattern, words: list[Morpheme], i: int, skippable: set) -> tuple[int, tuple[int, ...]] | None:
    """Where `pattern` matching from words[i] ends, and the negators it passed; words in `skippable`
    (neutral adverbs such as 좀, 너무) and 안/못 may stand between its morphemes ("숨이 좀 차요")."""
    j, negators = i, []
    for n, key in enumerate(pattern):
        while n and j < len(words) and (words[j].form, words[j].kind) != key:
            if (words[j].form, words[j].kind) in _PRE_NEGATORS:
                negators.append(j)
            elif (words[j].form, words[j].kind) not in skippable:
                return None
            j += 1
        if j >= len(words) or (words[j].form, words[j].kind) != key:
            return None
        j += 1
    return j, tuple(negators)


def _claims(answers: SpeechAnswers, words: list[Morpheme], skippable: set) -> list[_Claim]:
    keys = [(w.form, w.kind) for w in words]
    found = []
    for rank, name in enumerate(_LISTS):
        for phrase in getattr(answers, name):
            pattern, surface = _pattern(phrase), _surface(phrase)
            if not pattern:
                continue
            for i in range(len(keys)):
                matched = _match(pattern, words, i, skippable) if keys[i] == pattern[0] else None
                if matched is None:  # the same words as written, however Kiwi read them here
                    run, j = "", i
                    while j < len(words) and len(run) < len(surface):
                        run += words[j].text.replace(" ", "")
                        j += 1
                    matched = (j, ()) if run == surface and j > i else None
                if matched:
                    end, negators = matched
                    found.append((-(end - i), rank, i, _Claim(name, i, end, phrase, negators)))
    taken = [False] * len(words)
    claims = []
    for _, _, _, claim in sorted(found, key=lambda f: f[:3]):
        if not any(taken[claim.start : claim.end]):
            taken[claim.start : claim.end] = [True] * (claim.end - claim.start)
            claims.append(claim)
    return sorted(claims, key=lambda c: c.start)


def _hedge(word: Morpheme, tokens: list) -> str | None:
    """What, in the endings after `word`, keeps it from being a plain statement (see _HEDGE_*), or None."""
    for token in tokens[word.at + 1 :]:
        tag, form = token.tag.split("-")[0], token.form
        if tag == "NNB":
            if form in _HEDGE_NNB:
                return f"'{word} {form}'"
        elif tag in ("EP", "EF") and form.startswith(_HONORIFIC):
            if word.form in ("마", "말"):
                continue  # 걱정 마세요, 마시고요: said to the caller, by the person
            return f"'{word}' 뒤의 '{form}'"  # 괜찮으세요, 잘 지내세요: asked or wished, or someone else
        elif (
            tag in ("EC", "EF") and form.endswith(("지만", "만", "는데", "ᆫ데", "은데")) or tag == "JX" and form == "만"
        ):
            return f"'{word}' 뒤의 '{form}'"  # 괜찮습니다만: "..., but"
        elif (
            tag == "EP"
            and form.startswith(_HEDGE_EP)
            or tag == "ETM"
            and form in _HEDGE_ETM
            or tag == "EC"
            and form.startswith(_HEDGE_EC)
            or tag == "EF"
            and form.startswith(_HEDGE_EF)
            or tag == "JX"
            and form in _HEDGE_JX
        ):
            return f"'{word}' 뒤의 '{form}'"
        elif not tag.startswith(("E", "J", "XS", "VCP", "VX")):
            return None  # the next word: its endings are its own
    return None


def _quote(words: Iterable[Morpheme]) -> str:
    return " ".join(str(w) for w in words)


def judge(answers: SpeechAnswers, text: str, confidence: float) -> Verdict:
    """What the answer `text`, heard with `confidence` (0..1), means under the flow's `answers`."""
    if not isinstance(confidence, (int, float)) or math.isnan(confidence) or not 0 <= confidence <= 1:
        return Verdict("unclear", f"인식 신뢰도 {confidence!r}: 0~1 사이의 값이 아님")
    if confidence < answers.min_confidence:
        return Verdict("unclear", f"인식 신뢰도 {confidence:.0%}: 기준 {answers.min_confidence:.0%} 미만")
    if not text or not text.strip():
        return Verdict("unclear", "들린 말 없음")
    if len(text) > MAX_ANSWER:  # an answer to a yes-or-no question is short; this is something else (a radio?)
        return Verdict("unclear", f"답변이 너무 김 ({len(text)}자)")
    words, tokens = _morphemes(analyser().space(text))  # recognisers split words: "쓰러 졌어요"
    if not words:
        return Verdict("unclear", "알아들을 수 있는 말 없음")
    neutral = {pattern[0] for pattern in map(_pattern, answers.neutral) if len(pattern) == 1}
    skippable = {key for key in neutral if key[1] == "M"}
    used = [False] * len(words)
    help_: list[str] = []
    risk: list[str] = []
    well: list[str] = []
    unclear: list[str] = []

    def negator_before(i: int) -> int | None:
        j = i - 1
        if (
            j >= 0
            and not used[j]
            and (words[j].form, words[j].kind) in _PRE_NEGATORS
            and not any(t.tag in ("EF", "SF") for t in tokens[words[j].at + 1 : words[i].at])
        ):
            return j
        return None

    def word_after(end: int) -> int | None:
        """The next content morpheme, past bound nouns and adverbs the flow calls neutral (거, 것, 다, 하나도)."""
        j = end
        while j < len(words) and (
            words[j].tag == "NNB" or words[j].tag in ("MAG", "NR") and (words[j].form, words[j].kind) in neutral
        ):
            j += 1
        if j >= len(words) or used[j] or end == 0:
            return None
        # Only within the clause: "괜찮아요. 아닙니다" is two answers, not a negated 괜찮다.
        between = tokens[words[end - 1].at + 1 : words[j].at]
        return None if any(t.tag in ("EF", "SF") for t in between) else j

    def negator_after(end: int) -> int | None:
        j = word_after(end)
        if j is None:
            return None
        if (words[j].form, words[j].kind) == ("못", "M") and j + 1 < len(words) and words[j + 1].form == "하":
            used[j + 1] = True  # 지내지 못 해요
            return j
        return j if (words[j].form, words[j].kind) in _POST_NEGATORS else None

    claimed_by: list[str | None] = [None] * len(words)
    for claim in _claims(answers, words, skippable):
        if any(used[claim.start : claim.end]):
            continue
        used[claim.start : claim.end] = [True] * (claim.end - claim.start)
        claimed_by[claim.start : claim.end] = [claim.list] * (claim.end - claim.start)
        said = _quote(words[claim.start : claim.end])
        if claim.list == "risk":
            risk.append(said)
            continue
        negators = []
        if claim.list in (
            Disposition.HELP_REQUESTED,
            Disposition.ACKNOWLEDGED,
            "activities",
        ):  # what negation turns around
            negators = [
                j for j in (negator_before(claim.start), *claim.negators, negator_after(claim.end)) if j is not None
            ]
        for k in negators:
            used[k] = True
        negated = len(negators) % 2 == 1
        if len(negators) == 2:
            unclear.append(f"이중 부정 '{said}'")
        elif (
            claim.list == Disposition.ACKNOWLEDGED
            and negated
            and all(w.kind == "I" or w.tag == "NP" for w in words[claim.start : claim.end])
        ):
            unclear.append(f"긍정과 부정이 함께: '{said}'")  # 네 아니에요
        elif (
            claim.list == Disposition.HELP_REQUESTED
            and not negated
            and (j := word_after(claim.end)) is not None
            and (words[j].form, words[j].kind) in _ABSENT
        ):
            used[j] = True
            unclear.append(
                f"'{said} {words[j]}'"
            )  # 필요 없어요: not a call for help, and not a statement of being well
        elif claim.list == Disposition.HELP_REQUESTED:
            hedge = negated and next(filter(None, (_hedge(words[k], tokens) for k in (claim.end - 1, *negators))), None)
            if hedge:
                unclear.append(f"단정이 아님: {hedge}")  # 아프지는 않아요, 안 아팠어요
            else:
                (well if negated else help_).append(f"'{said}'" + (" 부정" if negated else ""))
        elif claim.list == Disposition.ACKNOWLEDGED:
            hedge = not negated and _hedge(words[claim.end - 1], tokens)
            if hedge:
                unclear.append(f"단정이 아님: {hedge}")  # 괜찮았어요, 괜찮을 거예요, 잘 지내야죠
            else:
                (help_ if negated else well).append(f"'{said}'" + (" 부정" if negated else ""))
        elif claim.list == "activities":
            if negated:
                help_.append(f"'{words[negators[0]]} {said}'")
        elif claim.list in ("no_trouble", "lacking"):
            j = word_after(claim.end)
            after = (words[j].form, words[j].kind) if j is not None else None
            # j is None only when after is: the `j is not None` tests change no outcome, they only say so
            if j is not None and after in _ABSENT and claim.list == "no_trouble" and not negated:
                used[j] = True
                if hedge := _hedge(words[j], tokens):
                    unclear.append(f"단정이 아님: {hedge}")  # 별일 없었어요, 아무 일 없을 거예요
                else:
                    well.append(f"'{said} {words[j]}'")
            elif j is not None and claim.list == "no_trouble" and after in _PRESENT:
                used[j] = True
                help_.append(f"'{said} {words[j]}'")
            elif j is not None and claim.list == "lacking" and after in _LACKING:
                used[j] = True
                help_.append(f"'{said} {words[j]}'")
            elif claim.list == "no_trouble":
                unclear.append(f"'{said}' 뒤에 없다가 없음")
        elif claim.list == "unclear":
            unclear.append(f"'{said}'")
        # neutral: neither helps nor hurts
    if risk:
        return Verdict(
            "help_requested",
            f"위험 발언: {', '.join(repr(r) for r in risk)}" + (f"; 도움 요청: {', '.join(help_)}" if help_ else ""),
            risk=True,
        )
    if help_:
        return Verdict("help_requested", f"도움 요청: {', '.join(help_)}")
    question = any(t.tag == "SF" and t.form == "?" for t in tokens) or any(
        t.tag == "EF" and t.form.endswith(_QUESTION_ENDINGS) for t in tokens
    )
    for i, w in enumerate(words):
        if used[i]:
            continue
        key = (w.form, w.kind)
        if key in _QUESTION_WORDS:
            question = True
        elif key in _NO_WORDS or key in _PRE_NEGATORS or key in _POST_NEGATORS or key in _ABSENT:
            unclear.append(f"부정어 '{w}'")
        elif key not in neutral and w.tag != "NNB":  # bound nouns (거, 것, 데) say nothing alone
            unclear.append(f"모르는 말 '{w}'")
    # A contrastive topic on a neutral noun says "this, but not that": "지금은 괜찮아요", "몸은 괜찮아요".
    # (저는, 나는: a pronoun takes 는 as a plain topic.)
    for i, w in enumerate(words):
        if (
            claimed_by[i] in (None, "neutral")
            and w.kind == "N"
            and w.tag != "NP"
            and (w.at + 1 < len(tokens) and tokens[w.at + 1].tag == "JX" and tokens[w.at + 1].form in _HEDGE_JX)
        ):
            unclear.append(f"대조: '{w}{tokens[w.at + 1].form}'")
    last = next((t for t in reversed(tokens) if not t.tag.startswith(("S", "J"))), None)
    if last is not None and (last.tag == "MAJ" or last.tag == "EC" and last.form.endswith(("데", "지만"))):
        unclear.append("말이 끝나지 않음")  # "네 근데요…": what follows may be the answer
    # An answer that ends on a noun, an adverb or a sigh the flow only calls neutral ("네 허리가", "네 너무",
    # "네 아이고") was cut off, or points to trouble: neutral words are neutral beside a statement, not in place of one.
    end = words[-1]
    if (
        claimed_by[-1] in (None, "neutral")
        and end.kind in ("N", "M", "I")
        and not any(t.tag.startswith(("E", "XSV", "XSA", "VCP")) for t in tokens[end.at + 1 :])
    ):
        unclear.append(f"말이 끝나지 않음: '{end}'")
    if question:
        unclear.insert(0, "질문")
    if unclear:
        return Verdict("unclear", "불분명: " + ", ".join(unclear))
    if well:
        return Verdict("acknowledged", f"안부 확인: {', '.join(well)}")
    return Verdict("unclear", "긍정이나 안부를 알리는 말 없음")
