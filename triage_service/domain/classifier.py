"""The complaint classifier: a linear model over segmented text that predicts a level-2 tag.

Features, each block weighted so that none drowns the others:
- character 1-3 grams of the normalised text (catch typos, slang and words jieba splits);
- jieba words and English words;
- the fields intake records beside the text (`target=logistics`, `demand=refund`,
  `channel=hotline`) and the signals the lexicon reads (`signal:health_risk`);
- taxonomy keywords (`keyword:lost` when a word the taxonomy lists for "lost" appears).
  Keywords are features whose weight the model learns, never rules that decide alone.

The level-1 category is derived from the taxonomy. Confidence is the model's probability
after temperature scaling, fitted on out-of-fold predictions of the training set so that a
0.7 means right about seven times in ten on complaints the model has not seen.
"""

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from triage_service.domain.signals import (
    SignalDefinition,
    SignalReader,
    default_reader,
    load_lexicon,
)
from triage_service.domain.taxonomy import Taxonomy, load_taxonomy
from triage_service.domain.text import feature_words, normalize

TRAINING_RESOURCE = "data/train.jsonl"
# Below this probability a prediction goes to a person (intake review) before it routes.
# In cross-validation on the training split, tags predicted at 0.4-0.6 were right about a
# third of the time and those at 0.6-0.8 about three times in four.
DEFAULT_MIN_CONFIDENCE = 0.6
_DIGITS = re.compile(r"\d+")


class ExampleError(ValueError):
    """A labelled example that cannot be used: bad JSON, missing text, unknown tag."""


@dataclass(frozen=True)
class Complaint:
    """What the classifier reads: the text and the fields intake records beside it."""

    text: str
    target: str | None = None
    demands: tuple[str, ...] = ()
    channel: str | None = None


@dataclass(frozen=True)
class LabelledComplaint:
    """A complaint with the level-2 tag a person gave it (and its priority, when known)."""

    complaint: Complaint
    subcategory: str
    priority: str | None = None


@dataclass(frozen=True)
class ModelSettings:
    """The classifier's knobs, chosen by cross-validation on the training split only."""

    regularization: float = 20.0
    char_weight: float = 1.0
    word_weight: float = 1.0
    field_weight: float = 0.5
    keyword_weight: float = 0.5
    # A character n-gram seen in one complaint only is mostly noise (names, numbers).
    min_char_df: int = 2
    calibration_folds: int = 3
    # Agents' corrections count this many times an ordinary example when retraining.
    correction_weight: float = 3.0
    top_signals: int = 5


@dataclass(frozen=True)
class Prediction:
    """A level-2 tag, its category, how sure the model is and the features that decided."""

    subcategory: str
    category: str
    confidence: float
    category_confidence: float
    manual_review: bool
    signals: tuple[str, ...]
    alternatives: tuple[tuple[str, float], ...] = ()


def complaint_from_mapping(data: Mapping[str, Any]) -> Complaint:
    """A complaint from a JSON object with `text` and optional target, demands, channel."""
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ExampleError("'text' must be a non-empty string")
    target = _optional_code(data, "target")
    channel = _optional_code(data, "channel")
    raw_demands = data.get("demands") or []
    if not isinstance(raw_demands, list):
        raise ExampleError("'demands' must be a list")
    demands = []
    for demand in raw_demands:
        # Events carry demands as objects ({"type": "refund", "amount": 120}); people write
        # them as plain words. Both are read.
        kind = demand.get("type") if isinstance(demand, Mapping) else demand
        if not isinstance(kind, str) or not kind:
            raise ExampleError(f"demand {demand!r} is neither a word nor an object with a type")
        demands.append(kind)
    return Complaint(text=text, target=target, demands=tuple(demands), channel=channel)


def _optional_code(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ExampleError(f"{key!r} must be a string")


def examples_from_lines(
    lines: Iterable[str], *, taxonomy: Taxonomy | None = None
) -> list[LabelledComplaint]:
    """Labelled complaints from JSON lines; ExampleError names the first bad line."""
    taxonomy = taxonomy or load_taxonomy()
    known = set(taxonomy.subcategory_codes)
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ExampleError("not a JSON object")
            complaint = complaint_from_mapping(data)
            subcategory = data.get("subcategory")
            if subcategory not in known:
                raise ExampleError(f"unknown subcategory {subcategory!r}")
        except (json.JSONDecodeError, ExampleError) as exc:
            raise ExampleError(f"line {number}: {exc}") from exc
        examples.append(LabelledComplaint(complaint, subcategory, data.get("priority")))
    return examples


def load_examples(path: Path, *, taxonomy: Taxonomy | None = None) -> list[LabelledComplaint]:
    """Labelled complaints from a JSON-lines file."""
    with path.open(encoding="utf-8") as lines:
        return examples_from_lines(lines, taxonomy=taxonomy)


def packaged_examples() -> list[LabelledComplaint]:
    """The training split shipped with the service."""
    text = resources.files("triage_service").joinpath(TRAINING_RESOURCE).read_text("utf-8")
    return examples_from_lines(text.splitlines())


def _identity(tokens: list[str]) -> list[str]:
    return tokens


@dataclass(frozen=True)
class _Prepared:
    chars: str
    words: list[str]
    fields: list[str]
    keywords: list[str]


@dataclass
class _Features:
    """The fitted vectorizers and how to turn a complaint into one row of features."""

    settings: ModelSettings
    signal_reader: SignalReader
    keyword_reader: SignalReader
    chars: TfidfVectorizer = field(init=False)
    words: TfidfVectorizer = field(init=False)
    fields: CountVectorizer = field(init=False)
    keywords: CountVectorizer = field(init=False)
    names: NDArray[np.str_] = field(init=False)
    _char_analyzer: Callable[[str], list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.chars = TfidfVectorizer(
            analyzer="char",
            ngram_range=(1, 3),
            sublinear_tf=True,
            min_df=self.settings.min_char_df,
        )
        self.words = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        self.fields = CountVectorizer(analyzer=_identity, binary=True)
        self.keywords = CountVectorizer(analyzer=_identity, binary=True)

    def prepare(self, complaint: Complaint) -> _Prepared:
        normalized = normalize(complaint.text)
        fields = [f"target={complaint.target}", f"channel={complaint.channel}"]
        fields += [f"demand={demand}" for demand in complaint.demands]
        fields += [f"signal:{hit.code}" for hit in self.signal_reader.read(complaint.text)]
        keywords = [f"keyword:{hit.code}" for hit in self.keyword_reader.read(complaint.text)]
        return _Prepared(
            chars=_DIGITS.sub("0", normalized),
            words=feature_words(normalized),
            fields=fields,
            keywords=keywords,
        )

    def fit_transform(self, prepared: Sequence[_Prepared]) -> sparse.csr_matrix:
        blocks = [
            self.chars.fit_transform([p.chars for p in prepared]),
            self.words.fit_transform([p.words for p in prepared]),
            self.fields.fit_transform([p.fields for p in prepared]),
            self.keywords.fit_transform([p.keywords for p in prepared]),
        ]
        self.names = np.concatenate(
            [
                [f"chars:{name}" for name in self.chars.get_feature_names_out()],
                [f"word:{name}" for name in self.words.get_feature_names_out()],
                list(self.fields.get_feature_names_out()),
                list(self.keywords.get_feature_names_out()),
            ]
        )
        self._char_analyzer = self.chars.build_analyzer()
        return self._weighted(blocks)

    def vector(self, prepared: _Prepared) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """One complaint's non-zero features (indices, values), as `transform` would give.

        scikit-learn's transform validates its input on every call, which costs more than the
        arithmetic for a single complaint; this is the same TF-IDF done directly.
        """
        blocks = (
            (self.chars, self._char_analyzer(prepared.chars), self.settings.char_weight, True),
            (self.words, prepared.words, self.settings.word_weight, True),
            (self.fields, prepared.fields, self.settings.field_weight, False),
            (self.keywords, prepared.keywords, self.settings.keyword_weight, False),
        )
        indices: list[NDArray[np.intp]] = []
        values: list[NDArray[np.float64]] = []
        offset = 0
        for vectorizer, tokens, weight, tfidf in blocks:
            vocabulary: dict[str, int] = vectorizer.vocabulary_
            counts = Counter(vocabulary[token] for token in tokens if token in vocabulary)
            if counts:
                index = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
                if tfidf:
                    # sublinear tf (1 + log tf) times idf, then unit length, as fitted.
                    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                    value = (np.log(tf) + 1.0) * vectorizer.idf_[index]
                    value /= np.sqrt(np.dot(value, value))
                else:
                    value = np.ones(len(counts))
                indices.append(index + offset)
                values.append(weight * value)
            offset += len(vocabulary)
        if not indices:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.concatenate(indices), np.concatenate(values)

    def transform(self, prepared: Sequence[_Prepared]) -> sparse.csr_matrix:
        blocks = [
            self.chars.transform([p.chars for p in prepared]),
            self.words.transform([p.words for p in prepared]),
            self.fields.transform([p.fields for p in prepared]),
            self.keywords.transform([p.keywords for p in prepared]),
        ]
        return self._weighted(blocks)

    def _weighted(self, blocks: list[Any]) -> sparse.csr_matrix:
        weights = (
            self.settings.char_weight,
            self.settings.word_weight,
            self.settings.field_weight,
            self.settings.keyword_weight,
        )
        return sparse.hstack(
            [weight * block for weight, block in zip(weights, blocks, strict=True)]
        ).tocsr()


class TriageModel:
    """A trained classifier: predicts a level-2 tag with a calibrated confidence."""

    def __init__(
        self,
        *,
        features: _Features,
        estimator: LogisticRegression,
        temperature: float,
        taxonomy: Taxonomy,
        training_size: int,
    ) -> None:
        self._features = features
        self._estimator = estimator
        self.temperature = temperature
        self.taxonomy = taxonomy
        self.training_size = training_size
        self.classes: tuple[str, ...] = tuple(str(code) for code in estimator.classes_)
        self._weights, self._intercepts = _class_weights(estimator)
        self._categories = tuple(taxonomy.category_of(code) for code in self.classes)

    def predict(
        self, complaint: Complaint, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
    ) -> Prediction:
        """The most likely level-2 tag; manual_review when its confidence is below the bar."""
        indices, values = self._features.vector(self._features.prepare(complaint))
        logits = self._weights[:, indices] @ values + self._intercepts
        probabilities = _softmax((logits / self.temperature)[np.newaxis, :])[0]
        return self._prediction(indices, values, probabilities, min_confidence)

    def predict_many(
        self, complaints: Sequence[Complaint], *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
    ) -> list[Prediction]:
        """Predictions for several complaints at once (one matrix product)."""
        if not complaints:
            return []
        rows = self._features.transform([self._features.prepare(c) for c in complaints])
        logits = rows @ self._weights.T + self._intercepts
        probabilities = _softmax(np.asarray(logits) / self.temperature)
        return [
            self._prediction(
                rows[index].indices, rows[index].data, probabilities[index], min_confidence
            )
            for index in range(len(complaints))
        ]

    def _prediction(
        self,
        indices: NDArray[np.intp],
        values: NDArray[np.float64],
        probabilities: NDArray[np.float64],
        min_confidence: float,
    ) -> Prediction:
        order = np.argsort(-probabilities)
        best = int(order[0])
        category = self._categories[best]
        category_confidence = sum(
            float(probability)
            for probability, code in zip(probabilities, self._categories, strict=True)
            if code == category
        )
        confidence = float(probabilities[best])
        return Prediction(
            subcategory=self.classes[best],
            category=category,
            confidence=round(confidence, 4),
            category_confidence=round(category_confidence, 4),
            manual_review=confidence < min_confidence,
            signals=self._deciding_features(indices, values, best),
            alternatives=tuple(
                (self.classes[int(index)], round(float(probabilities[index]), 4))
                for index in order[1:3]
            ),
        )

    def _deciding_features(
        self, indices: NDArray[np.intp], values: NDArray[np.float64], class_index: int
    ) -> tuple[str, ...]:
        """The features present in the complaint that pushed hardest towards the chosen tag."""
        present = self._weights[:, indices]
        # Relative to the average class, so a feature every tag shares does not "decide".
        contributions = values * (present[class_index] - present.mean(axis=0))
        top = np.argsort(-contributions)[: self._features.settings.top_signals]
        names = self._features.names
        return tuple(str(names[indices[i]]) for i in top if contributions[i] > 0)


def _class_weights(
    estimator: LogisticRegression,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One weight row and intercept per class; a two-class model's single row made two."""
    weights = np.asarray(estimator.coef_, dtype=np.float64)
    intercepts = np.asarray(estimator.intercept_, dtype=np.float64)
    if weights.shape[0] == 1:
        # Two classes: P(second) = sigmoid(z) = softmax([0, z]), so the first row is zero.
        weights = np.vstack([np.zeros_like(weights), weights])
        intercepts = np.concatenate([np.zeros(1), intercepts])
    return weights, intercepts


def _softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    result: NDArray[np.float64] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return result


def _keyword_reader(taxonomy: Taxonomy) -> SignalReader:
    """Reads the taxonomy's keywords with the same matching (and negation data) as signals."""
    definitions = tuple(
        SignalDefinition(
            code=sub.code, label_zh=sub.label_zh, label_en=sub.label_en, terms=sub.keywords
        )
        for category in taxonomy.categories
        for sub in category.subcategories
        if sub.keywords
    )
    return SignalReader(load_lexicon().model_copy(update={"signals": definitions}))


def _fit(
    matrix: sparse.csr_matrix,
    labels: NDArray[np.str_],
    weights: NDArray[np.float64],
    settings: ModelSettings,
) -> LogisticRegression:
    estimator = LogisticRegression(C=settings.regularization, max_iter=2000, tol=1e-3)
    estimator.fit(matrix, labels, sample_weight=weights)
    return estimator


def _fit_temperature(
    prepared: Sequence[_Prepared],
    labels: NDArray[np.str_],
    weights: NDArray[np.float64],
    settings: ModelSettings,
    features: _Features,
) -> float:
    """The temperature that makes out-of-fold probabilities honest (1.0 when data is thin)."""
    _, counts = np.unique(labels, return_counts=True)
    folds = min(settings.calibration_folds, int(counts.min()))
    if folds < 2:
        return 1.0
    logits: list[NDArray[np.float64]] = []
    truths: list[int] = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_index, held_index in splitter.split(np.zeros(len(labels)), labels):
        fold_features = _Features(settings, features.signal_reader, features.keyword_reader)
        fold_matrix = fold_features.fit_transform([prepared[i] for i in train_index])
        estimator = _fit(fold_matrix, labels[train_index], weights[train_index], settings)
        held = fold_features.transform([prepared[i] for i in held_index])
        class_weights, class_intercepts = _class_weights(estimator)
        scores = np.asarray(held @ class_weights.T) + class_intercepts
        known = {code: index for index, code in enumerate(estimator.classes_)}
        for row, label in zip(scores, labels[held_index], strict=True):
            if label in known:
                logits.append(row)
                truths.append(known[label])
    if not logits:
        return 1.0
    stacked = np.vstack(logits)
    truth = np.array(truths)

    def negative_log_likelihood(temperature: float) -> float:
        probabilities = _softmax(stacked / temperature)
        return float(-np.log(probabilities[np.arange(len(truth)), truth] + 1e-12).mean())

    result = minimize_scalar(negative_log_likelihood, bounds=(0.05, 20.0), method="bounded")
    temperature = float(result.x)
    return temperature if math.isfinite(temperature) else 1.0


def train(
    examples: Sequence[LabelledComplaint],
    *,
    weights: Sequence[float] | None = None,
    settings: ModelSettings | None = None,
    taxonomy: Taxonomy | None = None,
) -> TriageModel:
    """Fits a model on labelled complaints (optionally weighted, one weight per example)."""
    settings = settings or ModelSettings()
    taxonomy = taxonomy or load_taxonomy()
    if len({example.subcategory for example in examples}) < 2:
        raise ExampleError("training needs examples of at least two subcategories")
    unknown = {e.subcategory for e in examples} - set(taxonomy.subcategory_codes)
    if unknown:
        raise ExampleError(f"unknown subcategories: {', '.join(sorted(unknown))}")
    sample_weights = np.ones(len(examples)) if weights is None else np.asarray(weights, float)
    if sample_weights.shape != (len(examples),):
        raise ValueError("give one weight per example")
    features = _Features(settings, default_reader(), _keyword_reader(taxonomy))
    prepared = [features.prepare(example.complaint) for example in examples]
    labels = np.array([example.subcategory for example in examples])
    # One thread: a model this size gains nothing from more, and the service shares its cores.
    with threadpool_limits(limits=1):
        matrix = features.fit_transform(prepared)
        estimator = _fit(matrix, labels, sample_weights, settings)
        temperature = _fit_temperature(prepared, labels, sample_weights, settings, features)
    return TriageModel(
        features=features,
        estimator=estimator,
        temperature=temperature,
        taxonomy=taxonomy,
        training_size=len(examples),
    )


def retrain(
    base_examples: Sequence[LabelledComplaint],
    corrections: Sequence[LabelledComplaint],
    *,
    correction_weight: float | None = None,
    settings: ModelSettings | None = None,
    taxonomy: Taxonomy | None = None,
) -> TriageModel:
    """Fits a model on the base examples plus agents' corrections, which weigh more.

    A correction replaces a base example with the same text: the agent's tag is the newer
    judgement of that very complaint.
    """
    settings = settings or ModelSettings()
    weight = settings.correction_weight if correction_weight is None else correction_weight
    corrected = {normalize(c.complaint.text) for c in corrections}
    kept = [e for e in base_examples if normalize(e.complaint.text) not in corrected]
    return train(
        [*kept, *corrections],
        weights=[1.0] * len(kept) + [weight] * len(corrections),
        settings=settings,
        taxonomy=taxonomy,
    )
