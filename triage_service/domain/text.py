"""Complaint text as triage reads it: normalised, segmented into words, split into clauses.

Chinese runs are segmented by jieba's dictionary (the rjieba binding); Latin runs are split
into words (contractions kept whole, so "didn't" stays one negating word); emoji and other
symbols are single tokens. Punctuation and contrast words ("但是", "but") end a clause,
which bounds how far a negation reaches.
"""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import rjieba

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One run of Chinese, one number ("1,200.50"), one Latin word ("e-mail", "didn't"), or any
# other single visible character (emoji, currency signs, punctuation). Commas and points join
# digits only: "stitches,sorry" is two words.
_RUNS = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"
    r"|(?P<word>\d+(?:[.,]\d+)+|[a-z0-9]+(?:['\-][a-z0-9]+)*)"
    r"|(?P<other>\S)"
)
# Text is NFKC-normalised first, so full-width commas, question marks and the like arrive
# here in their ASCII forms.
_CLAUSE_PUNCTUATION = frozenset(
    "。、,.!?;:~\n()[]【】「」\"'/|" + "\u201c\u201d\u2018\u2019"  # curly quotes
)
# A contrast starts a new clause: "没有受伤，但是箱子破了" negates nothing after 但是.
_CONTRAST_WORDS = frozenset({"但是", "但", "不过", "可是", "然而", "but", "however", "though"})
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Clause:
    """Consecutive tokens between punctuation or contrast words.

    `joined` is the tokens without separators, for matching Chinese phrases across word
    breaks; `starts` is where each token begins in it.
    """

    tokens: tuple[str, ...]
    joined: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, words: Sequence[str]) -> "Clause":
        """A clause of these tokens."""
        starts = []
        offset = 0
        for word in words:
            starts.append(offset)
            offset += len(word)
        return cls(tuple(words), "".join(words), tuple(starts))


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, runs of whitespace as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def tokens(text: str) -> list[str]:
    """Words of a normalised text: jieba words for Chinese, words for Latin, single symbols."""
    found: list[str] = []
    for match in _RUNS.finditer(text):
        if match.lastgroup == "cjk":
            found.extend(word for word in rjieba.cut(match.group()) if word.strip())
        else:
            found.append(match.group())
    return found


def clauses(text: str) -> list[Clause]:
    """The clauses of a normalised text, punctuation and contrast words dropped."""
    result: list[Clause] = []
    current: list[str] = []
    for token in tokens(text):
        if token in _CLAUSE_PUNCTUATION or token in _CONTRAST_WORDS:
            if current:
                result.append(Clause.of(current))
            current = []
        else:
            current.append(token)
    if current:
        result.append(Clause.of(current))
    return result


def is_cjk(text: str) -> bool:
    """True when the text has at least one Chinese character."""
    return re.search(f"[{_CJK}]", text) is not None


def feature_words(text: str) -> list[str]:
    """Words for the classifier: tokens without punctuation, digit runs folded to one shape.

    Order and complaint numbers are different in every complaint and say nothing about its
    kind; folding them keeps "12 days" and "3 days" one feature.
    """
    words = []
    for token in tokens(text):
        if token in _CLAUSE_PUNCTUATION:
            continue
        words.append(_DIGITS.sub("0", token))
    return words
