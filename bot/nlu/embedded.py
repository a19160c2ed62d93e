"""The embedded engine: character n-grams and a linear classifier, trained from `nlu_data/` in seconds.

It needs no extra service, so it is the zero-setup default and the fallback when Rasa is down.
Character n-grams (within word boundaries) carry Polish without diacritics, Cyrillic spellings of
Polish terms and typos far better than whole words do. Every text, training example or message, goes
through `bot.nlu.speech.prepare` first, so phone speech (fillers, a phone preamble, spelled-out and
misheard Polish terms) reaches the classifier in the same form as typed text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.nlu.engine import IntentScore, NluResult, NluUnavailable
from bot.nlu.entities import extract
from bot.nlu.scoring import FastScorer
from bot.nlu.speech import prepare as normalise
from bot.nlu.speech import skeleton
from bot.nlu.training_data import Example, cached_model, fingerprint, load_examples

log = logging.getLogger(__name__)

# 4: text prepared by bot.nlu.speech (speech-to-text quirks folded); 5: the skeleton view (translit)
MODEL_VERSION = "embedded-5"


def build_pipeline() -> Pipeline:
    """The untrained classifier: word and character TF-IDF features into a logistic regression."""
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            # The same text in the spelling Cyrillic and chat transliteration share (bot.nlu.speech):
            # "chy mozhna prodovzhyty" meets the training examples written "чи можна продовжити".
            (
                "skeleton",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, preprocessor=skeleton
                ),
            ),
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    token_pattern=r"(?u)\b\w+\b",  # noqa: S106
                ),
            ),
        ]
    )
    # Logistic loss by stochastic gradient descent: the same model family as LogisticRegression at
    # a thirtieth of the training time (about a second for 5,000 examples on one core).
    classifier = SGDClassifier(loss="log_loss", alpha=3e-5, max_iter=50, tol=1e-4, random_state=0)
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass
class TrainedModel:
    """A fitted pipeline with what it was trained on."""

    pipeline: Pipeline
    labels: list[str]
    data_fingerprint: str
    examples: int
    seconds: float


def train(examples: list[Example], data_fingerprint: str = "") -> TrainedModel:
    """Fit the classifier on the examples."""
    if len({example.intent for example in examples}) < 2:
        raise ValueError("the embedded engine needs examples of at least two intents")
    started = time.perf_counter()
    pipeline = build_pipeline()
    pipeline.fit([normalise(e.text) for e in examples], [e.intent for e in examples])
    labels = [str(label) for label in pipeline.classes_]
    return TrainedModel(pipeline, labels, data_fingerprint, len(examples), time.perf_counter() - started)


class EmbeddedEngine:
    """Parses in-process with a model trained from the Rasa training files."""

    name = "embedded"

    def __init__(self, model: TrainedModel) -> None:
        self.model = model
        self.scorer = FastScorer(model.pipeline)

    @classmethod
    def from_files(cls, data_paths: list[Path], *, cache_dir: Path | None = None) -> EmbeddedEngine:
        """Train from the files, or load the cached model trained from exactly these files."""
        key = fingerprint(data_paths, MODEL_VERSION)

        def build() -> TrainedModel:
            model = train(load_examples(data_paths), key)
            log.info(
                "nlu.embedded_trained", extra={"examples": model.examples, "seconds": round(model.seconds, 2)}
            )
            return model

        return cls(cached_model(cache_dir, "embedded", key, build))

    def parse_sync(self, text: str) -> NluResult:
        """Rank every label for `text` (CPU-bound, well under a millisecond for a message)."""
        probabilities = self.scorer.probabilities(normalise(text))
        order = np.argsort(probabilities)[::-1]
        ranking = tuple(IntentScore(self.model.labels[i], float(probabilities[i])) for i in order[:10])
        return NluResult(
            text=text, best=ranking[0], ranking=ranking, engine=self.name, entities=extract(text)
        )

    async def parse(self, text: str) -> NluResult:
        try:
            return self.parse_sync(text)
        except Exception as error:  # a broken model must not take the conversation down
            raise NluUnavailable(f"embedded engine: {error}") from error

    async def check(self) -> str:
        return f"embedded ({self.model.examples} examples, {len(self.model.labels)} intents)"

    async def close(self) -> None:
        await asyncio.sleep(0)
