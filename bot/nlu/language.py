"""Which of pl, uk, ru, en a message is written in — for short, mixed and transliterated text.

Letters that only one language uses decide first (ї/є/ґ/і are Ukrainian, ы/э/ъ/ё Russian, ą/ę/ł/ś/ż…
Polish). Everything else goes to a character n-gram classifier trained on the same `nlu_data/`
files as the NLU, one folder per language, so "skolko stoit karta pobytu" (Russian in Latin
letters) and "skilky koshtuie" (Ukrainian) are told apart by how they are spelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from bot.nlu.scoring import FastScorer
from bot.nlu.training_data import cached_model, fingerprint, load_examples
from infoopt.core.languages import LANGUAGES

DETECTOR_VERSION = "language-2"
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_UKRAINIAN_ONLY = re.compile(r"[їєґі]", re.IGNORECASE)
_RUSSIAN_ONLY = re.compile(r"[ыэъё]", re.IGNORECASE)
_POLISH_LETTERS = re.compile(r"[ąćęłńśźż]", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _words(*items: str) -> frozenset[str]:
    return frozenset(word for item in items for word in item.split())


# Function words, not domain terms: "karta pobytu" or "pesel" appear in every language's messages.
ENGLISH_WORDS = _words(
    # Not "i", "do", "to", "no", "a": they are Polish words too.
    "the is are am was my me how what can could does you your please for with when where which who why",
    "need have has will would should there this that it get apply if about after before not yes hello hi",
    "thanks thank want wants from and or of in at be been lost new old kindly sir madam still",
)
POLISH_WORDS = _words(
    "jak czy się nie jest są mam mamy kiedy gdzie ile dla że mnie można trzeba jaki jakie jaka jakim",
    "proszę dzień dobry chcę muszę moja mój moje mojej potrzebuję co jeśli albo lub bo ale tak już jeszcze",
    "który która które gdy oraz prosze dzien chce musze moze mozna jesli juz sie",
)
UKRAINIAN_WORDS = _words(
    "що як чи це мені де коли скільки треба потрібно можна будь ласка дякую хто який яка які яке",
    "працювати працюю робота роботу роботи отримати отримання надання громадянства громадянство",
    "диплому заява заяву подати податися поїхати виїхати зараз вже ще чому мій моя моє моєї тільки",
)
RUSSIAN_WORDS = _words(
    "что как где когда сколько нужно можно пожалуйста спасибо мне кто какой какая какие какое",
    "работать работаю работа работу работы получить получение гражданства гражданство диплома",
    "заявление подать поехать выехать сейчас уже еще почему мой моя мое моей только сроки если",
)
TRANSLIT_RUSSIAN = _words(
    "skolko kak mne nuzhno chto gde mozhno kogda pochemu ya hochu kakie kakoy eto dlya moy moya moego",
    "pozhaluysta spasibo privet nado esli uzhe eshche seychas rabotat poluchit",
)
TRANSLIT_UKRAINIAN = _words(
    "skilky yak shcho shcho meni treba mozhna koly chy potribno khochu yaki yakyi tse dlia moia moie",
    "bud laska diakuiu dyakuyu pryvit iakshcho vzhe shche zaraz pratsiuvaty otrymaty otrymaty robota",
)


@dataclass(frozen=True, slots=True)
class Detection:
    language: str
    confidence: float


def _teaches(language: str, text: str) -> bool:
    """Whether a training line is clean evidence for its folder's language.

    The Polish file holds Ukrainian greetings and English lines: those would teach the wrong spelling.
    """
    words = [word.lower() for word in _WORD.findall(text)]
    english = sum(word in ENGLISH_WORDS for word in words)
    if language == "pl":
        return not _CYRILLIC.search(text) and english == 0
    if language == "en":
        return not _CYRILLIC.search(text)
    return True


class LanguageDetector:
    """Rules for unmistakable letters, a character n-gram classifier for the rest."""

    def __init__(self, pipeline: Pipeline | None) -> None:
        """A detector on a trained pipeline; with None, the letter and word rules alone."""
        self._pipeline = pipeline
        self._labels = [str(label) for label in pipeline.classes_] if pipeline is not None else []
        self._scorer = FastScorer(pipeline) if pipeline is not None else None

    @classmethod
    def from_files(cls, data_dir: Path, *, cache_dir: Path | None = None) -> LanguageDetector:
        """Train from `data_dir`, or load the cached detector trained from exactly these files."""
        key = fingerprint([data_dir], DETECTOR_VERSION)
        return cached_model(cache_dir, "language", key, lambda: cls.train(data_dir))

    @classmethod
    def train(cls, data_dir: Path) -> LanguageDetector:
        """Learn from `data_dir/<language>/*.yml`, keeping only the lines that are clearly that language."""
        texts: list[str] = []
        labels: list[str] = []
        for language in LANGUAGES:
            for example in load_examples([data_dir / language]):
                if not _teaches(language, example.text):
                    continue
                texts.append(example.text.lower())
                labels.append(language)
        if len(set(labels)) < 2:
            raise ValueError(f"no per-language training data under {data_dir}")
        pipeline = Pipeline(
            [
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)),
                ("classifier", LogisticRegression(C=10.0, max_iter=1000)),
            ]
        )
        pipeline.fit(texts, labels)
        return cls(pipeline)

    def detect(self, text: str) -> Detection:
        """The likeliest language with a rough confidence (0..1)."""
        words = [word.lower() for word in _WORD.findall(text)]
        cyrillic = [word for word in words if _CYRILLIC.search(word)]
        if cyrillic:
            # Polish terms inside a Cyrillic message are borrowed: the person writes Ukrainian or Russian.
            part = " ".join(cyrillic)
            ukrainian = len(_UKRAINIAN_ONLY.findall(part)) + sum(word in UKRAINIAN_WORDS for word in cyrillic)
            russian = len(_RUSSIAN_ONLY.findall(part)) + sum(word in RUSSIAN_WORDS for word in cyrillic)
            if ukrainian != russian:
                margin = abs(ukrainian - russian) / (ukrainian + russian)
                return Detection("uk" if ukrainian > russian else "ru", 0.6 + 0.35 * margin)
            return self._classify(part, allowed=("uk", "ru"))
        if not words:
            return self._classify(text, allowed=LANGUAGES)
        translit_uk = sum(word in TRANSLIT_UKRAINIAN for word in words)
        translit_ru = sum(word in TRANSLIT_RUSSIAN for word in words)
        if translit_uk or translit_ru:
            if translit_uk != translit_ru:
                return Detection("uk" if translit_uk > translit_ru else "ru", 0.8)
            return self._classify(text, allowed=("uk", "ru"))
        polish = sum(word in POLISH_WORDS for word in words) + 2 * bool(_POLISH_LETTERS.search(text))
        english = sum(word in ENGLISH_WORDS for word in words)
        if polish != english:
            return Detection("pl" if polish > english else "en", 0.85)
        return self._classify(text, allowed=("pl", "en"))

    def _classify(self, text: str, *, allowed: tuple[str, ...]) -> Detection:
        if self._scorer is None:  # no training data: the first allowed language, with little confidence
            return Detection(allowed[0], 0.3)
        probabilities = self._scorer.probabilities(text.lower())
        scores = {
            label: float(p) for label, p in zip(self._labels, probabilities, strict=True) if label in allowed
        }
        total = sum(scores.values()) or 1.0
        best = max(scores, key=lambda label: scores[label])
        return Detection(best, scores[best] / total)
