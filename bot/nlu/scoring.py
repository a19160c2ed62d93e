"""Scoring one message without scikit-learn's per-call overhead.

`Pipeline.predict_proba` on a single short text spends most of its time validating input and building
sparse matrices. `FastScorer` does the same arithmetic — TF-IDF per vectorizer (sublinear tf, idf, L2
norm), the linear scores, then one-vs-rest logistic probabilities normalised to sum to one — on numpy
arrays taken from the fitted pipeline. Tests check it agrees with `predict_proba`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline


class _Block:
    """One fitted TfidfVectorizer's part of the feature space."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        self.analyse: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        self.idf: NDArray[np.float64] = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.offset = offset

    def features(self, text: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        counts = Counter(term for term in self.analyse(text) if term in self.vocabulary)
        if not counts:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float64)
        index = np.fromiter((self.vocabulary[term] for term in counts), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[index]
        norm = float(np.sqrt(values @ values))
        return index + self.offset, values / norm if norm else values


class FastScorer:
    """Class probabilities for one text from a fitted `TF-IDF features → linear classifier` pipeline.

    Handles SGDClassifier(log_loss) (one-vs-rest, normalised) and multinomial LogisticRegression (softmax).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        features = pipeline.steps[0][1]
        classifier = pipeline.steps[-1][1]
        vectorizers = (
            [vectorizer for _name, vectorizer in features.transformer_list]
            if isinstance(features, FeatureUnion)
            else [features]
        )
        self._blocks: list[_Block] = []
        offset = 0
        for vectorizer in vectorizers:
            assert isinstance(vectorizer, TfidfVectorizer)
            self._blocks.append(_Block(vectorizer, offset))
            offset += len(vectorizer.vocabulary_)
        self._softmax = isinstance(classifier, LogisticRegression)
        # Rows by feature, so one message's few hundred features are gathered contiguously.
        self._weights = np.ascontiguousarray(np.asarray(classifier.coef_, dtype=np.float64).T)
        self._intercept = np.asarray(classifier.intercept_, dtype=np.float64)

    def probabilities(self, text: str) -> NDArray[np.float64]:
        scores = self._intercept.copy()
        for block in self._blocks:
            index, values = block.features(text)
            if index.size:
                scores += values @ self._weights[index]
        if self._softmax:
            exponent: NDArray[np.float64] = np.exp(scores - scores.max())
            return exponent / float(exponent.sum())
        positive = 1.0 / (1.0 + np.exp(-scores))
        total = float(positive.sum())
        return positive / total if total else np.full_like(positive, 1.0 / positive.size)
