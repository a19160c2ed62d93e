"""Measuring an engine on held-out data in Rasa's test format: accuracy, per-intent P/R/F1,
the most confused pairs, everything per language, and what a person gets under a decision policy."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.conversation import DecisionPolicy, decide
from bot.nlu.engine import NluResult
from bot.nlu.training_data import examples_of, strip_entity_markup
from bot.replies import ReplyKind

OUT_OF_SCOPE = "out_of_scope"
_LANGUAGE_COMMENT = re.compile(r"^#\s*lang(?:uage)?:\s*(pl|uk|ru|en)\b", re.IGNORECASE)
_INTENT_LINE = re.compile(r"^-\s*intent:\s*(\S+)")


# What a person gets for one message under a decision policy, in the order the tables show them.
ANSWERED_RIGHT = "answered right"
ANSWERED_WRONG = "answered wrong"
ASKED_BACK_RIGHT = "asked back, right topic offered"
ASKED_BACK_MISSING = "asked back, right topic missing"
NOT_UNDERSTOOD = "out of scope / not understood"
OUTCOMES = (ANSWERED_RIGHT, ANSWERED_WRONG, ASKED_BACK_RIGHT, ASKED_BACK_MISSING, NOT_UNDERSTOOD)


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
    # Per language, how many messages ended in each of OUTCOMES (empty when measured without a policy).
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)

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

    def outcome_share(self, outcome: str, language: str | None = None) -> float:
        """The share of the messages (of one language, or all) that ended in `outcome`."""
        counts = [self.outcomes.get(language, Counter())] if language else list(self.outcomes.values())
        total = sum(sum(count.values()) for count in counts)
        return sum(count[outcome] for count in counts) / total if total else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]


def outcome(gold: str, result: NluResult, policy: DecisionPolicy) -> str:
    """What the person who wrote a message labelled `gold` gets under `policy`: one of OUTCOMES.

    Asking back counts as right-topic-offered when the gold topic is among the choices; turning an
    out-of-scope question away is the right answer to it.
    """
    decision = decide(result, policy)
    if decision.kind is ReplyKind.CLARIFY:
        offered = {topic.name for topic in decision.topics}
        return ASKED_BACK_RIGHT if gold in offered else ASKED_BACK_MISSING
    if decision.kind in (ReplyKind.FALLBACK, ReplyKind.OUT_OF_SCOPE):
        return ANSWERED_RIGHT if gold == OUT_OF_SCOPE else NOT_UNDERSTOOD
    chosen = decision.topics[0].name if decision.topics else decision.intent
    return ANSWERED_RIGHT if chosen == gold else ANSWERED_WRONG


def predicted_label(result: NluResult) -> str:
    """The label an evaluation compares: `faq/<topic>` for articles, else the intent."""
    return result.best.name or "nlu_fallback"


def score(
    engine: str,
    examples: Sequence[LabelledExample],
    predictions: Sequence[str],
    latencies_ms: Sequence[float] = (),
    outcomes: Sequence[str] = (),
) -> Report:
    """Compare predictions with the labels; `outcomes` (one per example, if given) are tallied per language."""
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
        outcomes=tally_outcomes(examples, outcomes) if outcomes else {},
    )


def tally_outcomes(examples: Sequence[LabelledExample], outcomes: Sequence[str]) -> dict[str, Counter[str]]:
    """How many messages of each language ended in each outcome."""
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for example, ended in zip(examples, outcomes, strict=True):
        tally[example.language or "?"][ended] += 1
    return dict(sorted(tally.items()))


async def evaluate(
    name: str,
    parse: Callable[[str], Awaitable[NluResult]],
    examples: Sequence[LabelledExample],
    *,
    label: Callable[[NluResult], str] = predicted_label,
    policy: DecisionPolicy | None = None,
) -> Report:
    """Parse every example with `parse` and score the results, timing each parse.

    With a `policy`, the report also counts what each person would get under it (`outcome`).
    """
    predictions: list[str] = []
    latencies: list[float] = []
    outcomes: list[str] = []
    for example in examples:
        started = time.perf_counter()
        result = await parse(example.text)
        latencies.append((time.perf_counter() - started) * 1000)
        predictions.append(label(result))
        if policy is not None:
            outcomes.append(outcome(example.intent, result, policy))
    return score(name, examples, predictions, latencies, outcomes)


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
    if report.outcomes:
        lines += ["", *render_outcomes(report)]
    if per_intent:
        lines += ["", f"{'intent':42s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'n':>5s}"]
        for intent, s in sorted(report.per_intent.items()):
            lines.append(f"{intent:42s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.support:5d}")
    lines += ["", "most confused (gold -> predicted):"]
    for gold, guess, count in report.confusions[:confusions]:
        lines.append(f"  {count:3d}  {gold} -> {guess}")
    return "\n".join(lines)


def render_outcomes(report: Report) -> list[str]:
    """What a person gets, per language and for all: one row per language, one column per outcome."""
    lines = ["what a person gets under the decision policy (share of the messages):"]
    lines.append(f"  {'':4s} {'n':>5s}  " + "  ".join(f"{name:>{len(name)}s}" for name in OUTCOMES))
    for language in [*report.outcomes, None]:
        total = sum(report.outcomes[language].values()) if language else report.total
        shares = "  ".join(f"{report.outcome_share(name, language):>{len(name)}.3f}" for name in OUTCOMES)
        lines.append(f"  {language or 'all':4s} {total:5d}  {shares}")
    return lines


def outcome_shortfalls(report: Report, min_answered_right: float, max_answered_wrong: float) -> list[str]:
    """The languages where fewer messages were answered right, or more answered wrong, than allowed."""
    failures: list[str] = []
    for language in report.outcomes:
        right = report.outcome_share(ANSWERED_RIGHT, language)
        wrong = report.outcome_share(ANSWERED_WRONG, language)
        if right < min_answered_right:
            failures.append(f"{language} answered right {right:.3f} < {min_answered_right}")
        if wrong > max_answered_wrong:
            failures.append(f"{language} answered wrong {wrong:.3f} > {max_answered_wrong}")
    return failures
