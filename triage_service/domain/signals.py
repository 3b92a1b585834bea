"""Signals in complaint text, read with the lexicons in `triage_service/signals.json`.

A signal is a named fact a complaint states ("someone was hurt", "I'll go to 12315", "I
changed my mind"). Which words state it is data, so reviewers grow the lexicon without code:
this module only knows how to match a term against segmented text, how negation reaches back
a few words within a clause, and how to read money amounts.
"""

import bisect
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.events.vocabulary import CODE_PATTERN, Priority
from triage_service.domain.taxonomy import Responsibility
from triage_service.domain.text import Clause, clauses, is_cjk, normalize, tokens

SIGNALS_RESOURCE = "signals.json"


class SignalLexiconError(ValueError):
    """A signals file that cannot be trusted: duplicate codes, empty terms, bad values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Negation(_Strict):
    """Words that deny what follows them, and how many words back they reach."""

    words: tuple[str, ...]
    prefix_characters: str = ""
    window: int = Field(default=3, ge=0, le=10)


class MoneyMarkers(_Strict):
    """What makes a number a sum of money rather than a count, a date or an order number."""

    currency_before: tuple[str, ...]
    currency_after: tuple[str, ...]
    context_before: tuple[str, ...] = ()
    context_after: tuple[str, ...] = ()
    non_money_units: tuple[str, ...] = ()


Terms = tuple[str, ...]


class SignalDefinition(_Strict):
    """One signal: its terms and combinations, and what it means for priority or responsibility."""

    code: str = Field(pattern=CODE_PATTERN)
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    priority: Priority | None = None
    responsibility: Responsibility | None = None
    # Among responsibility signals the highest precedence wins (force majeure over a
    # customer's change of mind over damage in transit).
    precedence: int = 0
    negatable: bool = False
    terms: Terms = ()
    combinations: tuple[tuple[Terms, ...], ...] = ()

    @model_validator(mode="after")
    def _has_terms(self) -> Self:
        if not self.terms and not self.combinations:
            raise ValueError(f"signal {self.code!r} has neither terms nor combinations")
        every_term = [*self.terms, *(t for combo in self.combinations for g in combo for t in g)]
        if any(not term.strip(" *") for term in every_term):
            raise ValueError(f"signal {self.code!r} has an empty term")
        if any(len(combo) < 2 or any(not group for group in combo) for combo in self.combinations):
            raise ValueError(f"signal {self.code!r}: a combination needs two non-empty groups")
        return self


class SignalLexicon(_Strict):
    """A validated, versioned signals file."""

    version: int = Field(ge=1)
    comment: str = ""
    negation: Negation
    money: MoneyMarkers
    signals: tuple[SignalDefinition, ...]

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        codes = [signal.code for signal in self.signals]
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise ValueError(f"duplicate signal code: {', '.join(repeated)}")
        return self

    def signal(self, code: str) -> SignalDefinition:
        """The signal with this code; KeyError when unknown."""
        for signal in self.signals:
            if signal.code == code:
                return signal
        raise KeyError(code)


@dataclass(frozen=True)
class SignalHit:
    """A signal found in a text, with the words that showed it."""

    code: str
    evidence: str


def lexicon_from_dict(data: object) -> SignalLexicon:
    """Validates a signals file in its JSON form; SignalLexiconError says what is wrong."""
    try:
        return SignalLexicon.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'signals'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SignalLexiconError(f"invalid signals file: {problems}") from exc


@cache
def load_lexicon() -> SignalLexicon:
    """The packaged signals file, validated once per process."""
    text = resources.files("triage_service").joinpath(SIGNALS_RESOURCE).read_text("utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SignalLexiconError(f"signals file is not valid JSON: {exc}") from exc
    return lexicon_from_dict(data)


@dataclass(frozen=True)
class _Term:
    """A lexicon term ready to match: Chinese as a string, anything else as words."""

    written: str
    cjk: str | None
    words: tuple[str, ...]
    prefix_last: bool

    @classmethod
    def compile(cls, written: str) -> "_Term":
        prefix_last = written.endswith("*")
        text = normalize(written.rstrip("*"))
        if is_cjk(text):
            return cls(written, "".join(text.split()), (), prefix_last=False)
        return cls(written, None, tuple(tokens(text)), prefix_last)


@dataclass(frozen=True)
class _TextView:
    """A text read once: its clauses, all their characters, and the set of its words."""

    clauses: tuple[Clause, ...]
    characters: str
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "_TextView":
        parts = tuple(clauses(normalize(text)))
        return cls(
            parts,
            "\x00".join(part.joined for part in parts),
            frozenset(word for part in parts for word in part.tokens),
        )


@dataclass(frozen=True)
class _Match:
    term: _Term
    negated: bool


class SignalReader:
    """Finds a lexicon's signals and money amounts in complaint texts."""

    def __init__(self, lexicon: SignalLexicon) -> None:
        self.lexicon = lexicon
        self._negators = frozenset(normalize(word) for word in lexicon.negation.words)
        self._negating_prefixes = frozenset(lexicon.negation.prefix_characters)
        self._terms = {
            signal.code: tuple(_Term.compile(term) for term in signal.terms)
            for signal in lexicon.signals
        }
        self._combinations = {
            signal.code: tuple(
                tuple(tuple(_Term.compile(term) for term in group) for group in combination)
                for combination in signal.combinations
            )
            for signal in lexicon.signals
        }
        self._amount_pattern = _amount_pattern(lexicon.money)
        self._money = lexicon.money
        # An index from what a text must contain to the terms that might then match, so a
        # complaint is checked against its few candidate terms rather than the whole lexicon.
        every = [term for terms in self._terms.values() for term in terms]
        every += [
            term
            for combinations in self._combinations.values()
            for combination in combinations
            for group in combination
            for term in group
        ]
        self._by_key: dict[str, list[_Term]] = {}
        self._prefix_terms: list[_Term] = []
        for term in every:
            if term.cjk is None and len(term.words) == 1 and term.prefix_last:
                self._prefix_terms.append(term)
            else:
                key = term.cjk if term.cjk is not None else term.words[0]
                self._by_key.setdefault(key, []).append(term)
        self._cjk_lengths = sorted({len(term.cjk) for term in every if term.cjk is not None})

    def read(self, text: str) -> tuple[SignalHit, ...]:
        """Every signal the text states, in lexicon order (negated terms do not count)."""
        view = _TextView.of(text)
        candidates = self._candidates(view)
        if not candidates:
            return ()
        hits = []
        for signal in self.lexicon.signals:
            evidence = self._evidence(signal, view, candidates)
            if evidence is not None:
                hits.append(SignalHit(signal.code, evidence))
        return tuple(hits)

    def _candidates(self, view: "_TextView") -> set[int]:
        """Ids of the terms whose first word or Chinese characters occur in the text."""
        found: set[int] = set()
        characters = view.characters
        for length in self._cjk_lengths:
            for start in range(len(characters) - length + 1):
                for term in self._by_key.get(characters[start : start + length], ()):
                    found.add(id(term))
        for word in view.words:
            for term in self._by_key.get(word, ()):
                found.add(id(term))
        for term in self._prefix_terms:
            if any(word.startswith(term.words[0]) for word in view.words):
                found.add(id(term))
        return found

    def _evidence(
        self, signal: SignalDefinition, view: "_TextView", candidates: set[int]
    ) -> str | None:
        for term in self._terms[signal.code]:
            if id(term) in candidates and self._found(term, view, signal.negatable):
                return term.written
        for combination in self._combinations[signal.code]:
            found = [
                next(
                    (
                        term
                        for term in group
                        if id(term) in candidates and self._found(term, view, signal.negatable)
                    ),
                    None,
                )
                for group in combination
            ]
            if all(term is not None for term in found):
                return " + ".join(term.written for term in found if term is not None)
        return None

    def _found(self, term: _Term, view: "_TextView", negatable: bool) -> bool:
        return any(
            not (negatable and match.negated)
            for part in view.clauses
            for match in self._matches(term, part)
        )

    def _matches(self, term: _Term, part: Clause) -> Iterable[_Match]:
        if term.cjk is not None:
            joined = part.joined
            starts = part.starts
            at = joined.find(term.cjk)
            while at >= 0:
                index = bisect.bisect_right(starts, at) - 1
                inside = joined[starts[index] : at]
                yield _Match(term, self._negated(part.tokens, index, inside))
                at = joined.find(term.cjk, at + 1)
            return
        words = part.tokens
        size = len(term.words)
        for index in range(len(words) - size + 1):
            if all(
                _word_matches(
                    words[index + k], term.words[k], prefix=term.prefix_last and k == size - 1
                )
                for k in range(size)
            ):
                yield _Match(term, self._negated(words, index, ""))

    def _negated(self, words: Sequence[str], index: int, inside: str) -> bool:
        # "不过期" segments as 不过|期: a negating character just before the match inside
        # its own word denies it as surely as a separate 不 would.
        if inside:
            return inside[-1] in self._negating_prefixes
        window = words[max(0, index - self.lexicon.negation.window) : index]
        return any(word in self._negators or word.endswith("n't") for word in window)

    def amounts(self, text: str) -> tuple[Decimal, ...]:
        """Sums of money the text mentions (with a currency, a money word, or 万), largest first."""
        normalized = normalize(text)
        found = []
        for match in self._amount_pattern.finditer(normalized):
            value = _number_value(match.group("num"), match.group("mag"))
            if value is None or not self._is_money(normalized, match):
                continue
            found.append(value)
        return tuple(sorted(found, reverse=True))

    def _is_money(self, text: str, match: re.Match[str]) -> bool:
        after = text[match.end() :].lstrip()
        if match.group("cur_before") or match.group("cur_after"):
            return True
        if any(_starts_with_word(after, unit) for unit in self._money.non_money_units):
            return False
        if "万" in match.group("num") or match.group("mag") == "万":
            return True
        before = text[max(0, match.start() - 14) : match.start()].rstrip()
        if any(_ends_with_word(before, word) for word in self._money.context_before):
            return True
        return any(after.startswith(word) for word in self._money.context_after)


def _word_matches(word: str, wanted: str, *, prefix: bool) -> bool:
    return word.startswith(wanted) if prefix else word == wanted


def _starts_with_word(text: str, word: str) -> bool:
    if not text.startswith(word):
        return False
    rest = text[len(word) :]
    return is_cjk(word) or not rest or not rest[0].isalnum()


def _ends_with_word(text: str, word: str) -> bool:
    if not text.endswith(word):
        return False
    rest = text[: len(text) - len(word)]
    return is_cjk(word) or not rest or not rest[-1].isalnum()


_CHINESE_DIGITS = {
    "零": 0,
    "\u3007": 0,  # the ideographic zero
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}
_MAGNITUDES = {"万": Decimal(10_000), "千": Decimal(1_000), "k": Decimal(1_000)}


def _amount_pattern(money: MoneyMarkers) -> re.Pattern[str]:
    def alternatives(words: Iterable[str]) -> str:
        ordered = sorted({normalize(word) for word in words}, key=len, reverse=True)
        return "|".join(re.escape(word) for word in ordered)

    chinese = "".join(_CHINESE_DIGITS) + "".join(_CHINESE_UNITS)
    return re.compile(
        rf"(?P<cur_before>{alternatives(money.currency_before)})?\s*"
        rf"(?P<num>(?<![\d.,])\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?![\d,])"
        rf"|(?<![\d.,])\d+(?:\.\d+)?(?![\d.,])"
        rf"|[{chinese}]+)"
        r"\s*(?P<mag>万|千|k(?![a-z]))?(?:多|余)?\s*"
        rf"(?P<cur_after>{alternatives(money.currency_after)})?"
    )


def _number_value(number: str, magnitude: str | None) -> Decimal | None:
    if number[0].isdigit():
        try:
            value = Decimal(number.replace(",", ""))
        except InvalidOperation:
            return None
    else:
        parsed = chinese_number(number)
        if parsed is None:
            return None
        value = Decimal(parsed)
    if magnitude:
        value *= _MAGNITUDES[magnitude]
    return value


def chinese_number(text: str) -> int | None:
    """The value of a Chinese numeral ("一万五" is 15000, "三千五" 3500); None without a digit."""
    if any(char not in _CHINESE_DIGITS and char not in _CHINESE_UNITS for char in text):
        return None
    if not any(char in _CHINESE_DIGITS or char == "十" for char in text):
        return None
    total = section = 0
    digit: int | None = None
    last_unit = 0
    for char in text:
        if char in _CHINESE_DIGITS:
            digit = _CHINESE_DIGITS[char]
            continue
        unit = _CHINESE_UNITS[char]
        if unit == 10_000:
            section += digit or 0
            total += (section or 1) * unit
            section = 0
        else:
            section += (1 if digit is None else digit) * unit
        digit = None
        last_unit = unit
    if digit is not None:
        # Spoken short form: a digit right after 万/千/百 counts in the next lower unit.
        previous_was_unit = len(text) >= 2 and text[-2] in _CHINESE_UNITS
        if previous_was_unit and last_unit >= 100:
            section += digit * last_unit // 10
        else:
            section += digit
    return total + section


@cache
def default_reader() -> SignalReader:
    """A reader for the packaged lexicon, built once per process."""
    return SignalReader(load_lexicon())
