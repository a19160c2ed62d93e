"""Measuring an engine on held-out data in Rasa's test format: accuracy, per-intent P/R/F1,
the most confused pairs, and everything per language."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.nlu.engine import NluResult
from bot.nlu.training_data import examples_of, strip_entity_markup

OUT_OF_SCOPE = "out_of_scope"
_LANGUAGE_COMMENT = re.compile(r"^#\s*lang(?:uage)?:\s*(pl|uk|ru|en)\b", re.IGNORECASE)
_INTENT_LINE = re.compile(r"^-\s*intent:\s*(\S+)")


@dataclass(frozen=True, slots=True)
class LabelledExample:
    text: str
    intent: str
    language: str | None


def read_test_file(path: Path) -> list[LabelledExample]:
    """Examples of a Rasa NLU file; a `# lang: xx` comment before an intent block names its language."""
    text = path.read_text(encoding="utf-8")
    languages: list[str | None] = []  # one per intent block, in file order
    pending: str | None = None
    for line in text.splitlines():
        comment = _LANGUAGE_COMMENT.match(line.strip())
        if comment:
            pending = comment.group(1).lower()
        elif _INTENT_LINE.match(line):
            languages.append(pending)
            pending = None
    document = yaml.safe_load(text) or {}
    blocks = [item for item in document.get("nlu") or [] if isinstance(item, dict) and item.get("intent")]
    labelled: list[LabelledExample] = []
    for block, language in zip(blocks, languages, strict=True):
        for raw in examples_of(block.get("examples")):
            sentence = strip_entity_markup(raw)
            if sentence:
                labelled.append(LabelledExample(sentence, str(block["intent"]), language))
    return labelled


@dataclass
class IntentScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    """What an evaluation found."""

    engine: str
    total: int
    correct: int
    per_intent: dict[str, IntentScores]
    confusions: list[tuple[str, str, int]]
    per_language: dict[str, tuple[int, int]]
    out_of_scope_rejected: tuple[int, int]
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def macro_f1(self) -> float:
        scores = [score.f1 for score in self.per_intent.values() if score.support]
        return sum(scores) / len(scores) if scores else 0.0

    def language_accuracy(self, language: str) -> float:
        correct, total = self.per_language.get(language, (0, 0))
        return correct / total if total else 0.0

    @property
    def out_of_scope_rejection(self) -> float:
        rejected, total = self.out_of_scope_rejected
        return rejected / total if total else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]


def predicted_label(result: NluResult) -> str:
    """The label an evaluation compares: `faq/<topic>` for articles, else the intent."""
    return result.best.name or "nlu_fallback"


def score(
    engine: str,
    examples: Sequence[LabelledExample],
    predictions: Sequence[str],
    latencies_ms: Sequence[float] = (),
) -> Report:
    """Compare predictions with the labels."""
    pairs = list(zip((e.intent for e in examples), predictions, strict=True))
    labels = sorted({gold for gold, _ in pairs} | {pred for _, pred in pairs})
    true_positive: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    per_language: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    oos = [0, 0]
    for example, (gold, guess) in zip(examples, pairs, strict=True):
        actual[gold] += 1
        predicted[guess] += 1
        hit = gold == guess
        if hit:
            true_positive[gold] += 1
        else:
            confusions[(gold, guess)] += 1
        language = example.language or "?"
        per_language[language][0] += int(hit)
        per_language[language][1] += 1
        if gold == OUT_OF_SCOPE:
            oos[1] += 1
            oos[0] += int(guess in (OUT_OF_SCOPE, "nlu_fallback"))
    per_intent: dict[str, IntentScores] = {}
    for label in labels:
        p = true_positive[label] / predicted[label] if predicted[label] else 0.0
        r = true_positive[label] / actual[label] if actual[label] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per_intent[label] = IntentScores(p, r, f, actual[label])
    return Report(
        engine=engine,
        total=len(pairs),
        correct=sum(true_positive.values()),
        per_intent=per_intent,
        confusions=[(gold, guess, count) for (gold, guess), count in confusions.most_common()],
        per_language={language: (v[0], v[1]) for language, v in sorted(per_language.items())},
        out_of_scope_rejected=(oos[0], oos[1]),
        latencies_ms=list(latencies_ms),
    )


async def evaluate(
    name: str,
    parse: Callable[[str], Awaitable[NluResult]],
    examples: Sequence[LabelledExample],
    *,
    label: Callable[[NluResult], str] = predicted_label,
    observe: Callable[[LabelledExample, NluResult], None] | None = None,
) -> Report:
    """Parse every example with `parse` and score the results, timing each parse.

    `observe` sees every example with its result, for measures beyond top-1 (the benchmark's outcomes).
    """
    predictions: list[str] = []
    latencies: list[float] = []
    for example in examples:
        started = time.perf_counter()
        result = await parse(example.text)
        latencies.append((time.perf_counter() - started) * 1000)
        predictions.append(label(result))
        if observe is not None:
            observe(example, result)
    return score(name, examples, predictions, latencies)


def render(report: Report, *, confusions: int = 15, per_intent: bool = True) -> str:
    """The report as a plain-text table."""
    lines = [
        f"engine {report.engine}: {report.correct}/{report.total} correct, accuracy {report.accuracy:.3f}, "
        f"macro-F1 {report.macro_f1:.3f}, out-of-scope rejected {report.out_of_scope_rejection:.3f}",
        "",
        "per language:",
    ]
    for language, (correct, total) in report.per_language.items():
        lines.append(f"  {language}  {correct:4d}/{total:<4d}  {correct / total if total else 0:.3f}")
    if report.latencies_ms:
        lines.append(
            f"parse latency: p50 {report.percentile_ms(50):.2f} ms, p99 {report.percentile_ms(99):.2f} ms"
        )
    if per_intent:
        lines += ["", f"{'intent':42s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'n':>5s}"]
        for intent, s in sorted(report.per_intent.items()):
            lines.append(f"{intent:42s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.support:5d}")
    lines += ["", "most confused (gold -> predicted):"]
    for gold, guess, count in report.confusions[:confusions]:
        lines.append(f"  {count:3d}  {gold} -> {guess}")
    return "\n".join(lines)
