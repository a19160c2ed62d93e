"""Issue 15: what a person gets per language (answered right, asked back, answered wrong, not understood),
the translit view of the embedded engine and the formal letter's salutation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.conversation import DecisionPolicy, decide
from bot.nlu.embedded import EmbeddedEngine, build_pipeline
from bot.nlu.engine import IntentScore, NluResult
from bot.nlu.evaluation import (
    ANSWERED_RIGHT,
    ANSWERED_WRONG,
    ASKED_BACK_MISSING,
    ASKED_BACK_RIGHT,
    NOT_UNDERSTOOD,
    LabelledExample,
    evaluate,
    outcome,
    outcome_shortfalls,
    render,
)
from bot.nlu.speech import prepare, skeleton
from bot.replies import ReplyKind

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "nlu_data" / "data"
POLICY = DecisionPolicy(answer=0.45, margin=0.2, floor=0.15)


def result(*scores: tuple[str, float]) -> NluResult:
    ranked = tuple(IntentScore(name, confidence) for name, confidence in scores)
    return NluResult(text="x", best=ranked[0], ranking=ranked, engine="test")


@pytest.mark.parametrize(
    ("gold", "scores", "expected"),
    [
        ("faq/fees", (("faq/fees", 0.8), ("faq/blue_card", 0.1)), ANSWERED_RIGHT),
        ("faq/fees", (("faq/blue_card", 0.8), ("faq/fees", 0.1)), ANSWERED_WRONG),
        ("faq/fees", (("faq/blue_card", 0.4), ("faq/fees", 0.3)), ASKED_BACK_RIGHT),
        ("faq/fees", (("faq/blue_card", 0.4), ("faq/job_loss", 0.3), ("faq/fees", 0.01)), ASKED_BACK_MISSING),
        ("faq/fees", (("faq/fees", 0.05), ("faq/blue_card", 0.04)), NOT_UNDERSTOOD),
        # turning an out-of-scope question away is its right answer; answering it with a topic is wrong
        ("out_of_scope", (("out_of_scope", 0.7), ("faq/fees", 0.1)), ANSWERED_RIGHT),
        ("out_of_scope", (("faq/fees", 0.7), ("out_of_scope", 0.1)), ANSWERED_WRONG),
        # conversation intents count by the intent the policy acted on
        ("request_human", (("request_human", 0.6), ("faq/fees", 0.1)), ANSWERED_RIGHT),
        ("faq/case_status", (("check_case_status", 0.6), ("faq/case_status", 0.3)), ANSWERED_WRONG),
    ],
)
def test_outcome_of_one_message(gold: str, scores: tuple[tuple[str, float], ...], expected: str) -> None:
    assert outcome(gold, result(*scores), POLICY) == expected


def test_the_report_tallies_outcomes_per_language_and_gates_on_them() -> None:
    rankings = {
        "a": (("faq/fees", 0.9), ("faq/blue_card", 0.05)),  # pl, right
        "b": (("faq/blue_card", 0.4), ("faq/fees", 0.35)),  # pl, asked back with the right topic
        "c": (("faq/blue_card", 0.9), ("faq/fees", 0.05)),  # en, wrong
        "d": (("faq/fees", 0.9), ("faq/blue_card", 0.05)),  # en, right
    }

    async def parse(text: str) -> NluResult:
        return result(*rankings[text])

    examples = [
        LabelledExample("a", "faq/fees", "pl"),
        LabelledExample("b", "faq/fees", "pl"),
        LabelledExample("c", "faq/fees", "en"),
        LabelledExample("d", "faq/fees", "en"),
    ]
    report = asyncio.run(evaluate("fake", parse, examples, policy=POLICY))
    assert report.outcome_share(ANSWERED_RIGHT, "pl") == 0.5
    assert report.outcome_share(ASKED_BACK_RIGHT, "pl") == 0.5
    assert report.outcome_share(ANSWERED_WRONG, "en") == 0.5
    assert report.outcome_share(ANSWERED_RIGHT) == 0.5
    assert outcome_shortfalls(report, 0.5, 0.5) == []
    assert outcome_shortfalls(report, 0.6, 0.3) == [
        "en answered right 0.500 < 0.6",
        "en answered wrong 0.500 > 0.3",
        "pl answered right 0.500 < 0.6",
    ]
    table = render(report, per_intent=False)
    assert "answered right" in table
    rows = {
        line.split()[0]: line.split()[1:]
        for line in table.splitlines()
        if line.startswith("  ") and "  " in line
    }
    assert rows["pl"][:3] == ["2", "0.500", "0.000"]
    assert rows["all"][:3] == ["4", "0.500", "0.250"]
    assert asyncio.run(evaluate("fake", parse, examples)).outcomes == {}, "no policy, no outcomes"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("чи можна продовжити візу", "chy mozhna prodovzhyty vizu"),  # Ukrainian, KMU-style translit
        ("працюю на заводі", "pratsiuiu na zavodi"),
        ("хочу подати заяву", "khochu podaty zajavu"),  # j for й, я, ю as Polish-style translit writes it
        ("можно ли продлить пребывание", "mozhno li prodlit prebyvanie"),
        ("где получить разрешение", "gde poluchit razreshenie"),
        ("щоденно", "shchodenno"),
        ("oświadczenie", "oswiadczenie"),
    ],
)
def test_cyrillic_and_its_chat_transliteration_share_one_skeleton(one: str, other: str) -> None:
    assert skeleton(one) == skeleton(other)


def test_the_skeleton_keeps_different_words_apart() -> None:
    assert skeleton("карта побиту") != skeleton("karta pracy")
    assert skeleton("zus") != skeleton("cukr")


@pytest.mark.parametrize(
    ("letter", "prepared"),
    [
        (
            "Szanowni Państwo, uprzejmie proszę o informację o opłacie",
            "uprzejmie prosze o informacje o oplacie",
        ),
        ("Dear Sir or Madam, I would like to ask about the fee.", "i would like to ask about the fee."),
        ("To whom it may concern, please tell me the fee", "please tell me the fee"),
        ("Уважаемые господа, прошу сообщить размер сбора", "прошу сообщить размер сбора"),
        ("Шановні пані та панове, прошу повідомити розмір збору", "прошу повідомити розмір збору"),
        ("Dear Sir", "dear sir"),  # a salutation alone is kept: nothing follows it
    ],
)
def test_a_formal_salutation_is_dropped_like_a_greeting(letter: str, prepared: str) -> None:
    assert prepare(letter) == prepared


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedEngine:
    return EmbeddedEngine.from_files([DATA], cache_dir=tmp_path_factory.mktemp("nlu"))


# Ukrainian and Russian in Latin letters, written for this test (not from any test or development set).
# Without the skeleton view the engine ranked most of them first too, but with confidences of 0.1-0.4,
# so the person was asked back; with it they are answered outright.
TRANSLITERATED = [
    ("chy mozhu ja pratsiuvaty poky rozghliadaiut moiu spravu", "faq/work_while_pending"),
    ("skilky chekaty na rishennia po pobytu", "faq/processing_time_delay"),
    ("chy potriben perekladach prysiazhnyi dlia dyplomu", "faq/document_translation_recognition"),
    ("chy mozhna vidkryty vlasnyi biznes z kartoju pobytu", "faq/business_activity"),
    ("chy treba osobysto pryikhaty zdaty vidbytky", "faq/personal_appearance_fingerprints"),
    ("chto delat esli uvolili s raboty a u menja karta pobytu", "faq/job_loss"),
    ("mozhno li poehat v otpusk v Ispaniju s kartoj pobytu", "faq/travel_abroad"),
]


@pytest.mark.parametrize(("text", "expected"), TRANSLITERATED)
def test_transliterated_ukrainian_and_russian_is_answered_outright(
    engine: EmbeddedEngine, text: str, expected: str
) -> None:
    decision = decide(engine.parse_sync(text), DecisionPolicy())
    assert decision.kind is ReplyKind.ANSWER, decision
    assert decision.topics[0].name == expected


def test_the_skeleton_view_is_part_of_the_model() -> None:
    names = [name for name, _ in build_pipeline().steps[0][1].transformer_list]
    assert "skeleton" in names


def write_fixture(path: Path) -> Path:
    path.write_text(
        "\n".join(
            [
                'version: "3.1"',
                "nlu:",
                "# lang: pl",
                "- intent: faq/fees",
                "  examples: |",
                "    - ile kosztuje karta pobytu",
                "    - jaka jest opłata skarbowa za zezwolenie na pobyt czasowy",
                "# lang: en",
                "- intent: out_of_scope",
                "  examples: |",
                "    - what's the weather in Kraków tomorrow",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def run_eval(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "INFOOPT_ENV": "test",
        "INFOOPT_DATA_DIR": str(tmp_path / "data"),
        "INFOOPT_LOG_LEVEL": "WARNING",
        "INFOOPT_LOG_JSON": "false",
    }
    fixture = write_fixture(tmp_path / "tiny.yml")
    command = [sys.executable, "-m", "infoopt.cli", "nlu", "eval", str(fixture), "--no-per-intent", *options]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_nlu_eval_prints_the_outcomes_per_language_and_fails_below_a_gate(tmp_path: Path) -> None:
    passed = run_eval(tmp_path, "--min-answered-right", "0.5", "--max-answered-wrong", "0.0")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    rows = {line.split()[0]: line.split()[1:] for line in passed.stdout.splitlines() if line.startswith("  ")}
    assert rows["pl"][:3] == ["2", "1.000", "0.000"], passed.stdout
    assert rows["en"][:3] == ["1", "1.000", "0.000"], passed.stdout
    assert rows["all"][:3] == ["3", "1.000", "0.000"], passed.stdout
    failed = run_eval(tmp_path, "--min-answered-right", "1.01")
    assert failed.returncode == 1
    assert "BELOW THRESHOLD: en answered right 1.000 < 1.01; pl answered right 1.000 < 1.01" in failed.stdout
