"""The NLU pieces on their own: training data, the embedded engine, language detection, evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.embedded import EmbeddedEngine
from bot.nlu.evaluation import LabelledExample, read_test_file, score
from bot.nlu.language import LanguageDetector
from bot.nlu.rasa import result_from_rasa
from bot.nlu.training_data import load_examples, strip_entity_markup
from knowledge_base.topics import catalogue

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "nlu_data" / "data"
TEST_FILE = ROOT / "nlu_data" / "tests" / "test_nlu.yml"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedEngine:
    return EmbeddedEngine.from_files([DATA], cache_dir=tmp_path_factory.mktemp("nlu"))


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector.train(DATA)


def test_every_intent_has_at_least_twelve_examples_in_every_language() -> None:
    intents = [f"faq/{topic_id}" for topic_id in catalogue().topic_ids] + list(
        catalogue().conversation_intents
    )
    for language in ("pl", "uk", "ru", "en"):
        counts: dict[str, int] = {}
        for example in load_examples([DATA / language]):
            counts[example.intent] = counts.get(example.intent, 0) + 1
        for intent in intents:
            assert counts.get(intent, 0) >= 12, (language, intent, counts.get(intent, 0))
        assert set(counts) <= set(intents), set(counts) - set(intents)


def test_held_out_examples_are_not_in_the_training_data() -> None:
    training = {example.text.lower() for example in load_examples([DATA])}
    held_out = read_test_file(TEST_FILE)
    leaked = [example.text for example in held_out if example.text.lower() in training]
    assert leaked == [], leaked[:20]


def test_held_out_file_names_a_language_for_every_block() -> None:
    held_out = read_test_file(TEST_FILE)
    assert {example.language for example in held_out} == {"pl", "uk", "ru", "en"}


def test_entity_markup_is_stripped_for_the_embedded_engine() -> None:
    assert strip_entity_markup("sprawa [WSC-II-P.6151.1.2025](case_number) w [Tarnów](town)") == (
        "sprawa WSC-II-P.6151.1.2025 w Tarnów"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ile kosztuje karta pobytu", "faq/fees"),
        ("штамп виїзд?", "faq/travel_abroad"),
        ("сколько стоит карта побыту", "faq/fees"),
        ("can i work while my case is pending", "faq/work_while_pending"),
        ("хочу поговорити з людиною", "request_human"),
        ("погода завтра", "out_of_scope"),
    ],
)
def test_embedded_engine_understands_typical_messages(
    engine: EmbeddedEngine, text: str, expected: str
) -> None:
    result = engine.parse_sync(text)
    assert result.best.name == expected
    assert 0.0 < result.best.confidence <= 1.0
    assert [score.confidence for score in result.ranking] == sorted(
        (score.confidence for score in result.ranking), reverse=True
    )


@pytest.mark.parametrize(
    ("heard", "prepared"),
    [
        ("eee yyy ile kosztuje karta pobytu", "ile kosztuje karta pobytu"),
        ("um so uh how much is it", "so how much is it"),
        ("halo halo dzień dobry ja chciałam zapytać o kartę pobytu", "ja chcialam zapytac o karte pobytu"),
        ("алло здравствуйте ну как получить песель у ка эр", "как получить песель укр"),
        ("Dzień dobry, mam pytanie", "dzien dobry, mam pytanie"),  # a greeting alone stays one
        ("i lost the u k r status on my pezel", "i lost the ukr status on my pesel"),
        ("u ka er w peselu", "ukr w peselu"),
        ("numer w s c dwa p", "numer wsc dwa p"),
        ("я поступил в а гэ ха", "я поступил в агх"),
        ("so i er want to ask", "so i er want to ask"),
        ("my carte po bi tu is ready", "my karta pobytu is ready"),
        ("can i work on an o sviad chenie", "can i work on an oswiadczenie"),
        ("блу карт для айтішника", "блю кард для айтішника"),
        ("як отримати карту цукру", "як отримати карту цукр"),
        ("Ile kosztuje kartę pobytu?", "ile kosztuje karte pobytu?"),  # typed text keeps its shape
    ],
)
def test_speech_to_text_quirks_are_folded_away(heard: str, prepared: str) -> None:
    from bot.nlu.speech import prepare

    assert prepare(heard) == prepared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("halo halo dzień dobry yyy ja dzwonię zapytać ile kosztuje karta pobytu", "faq/fees"),
        ("алло здравствуйте эээ сколько стоит карта побыту", "faq/fees"),
        ("um my pezel lost the u k r status after a trip home", "faq/pesel_ukr"),
        ("eee czy programista może dostać blu kard", "faq/blue_card"),
        ("ну хто може подати на карту цукру", "faq/cukr_card"),
    ],
)
def test_embedded_engine_understands_phone_speech(engine: EmbeddedEngine, text: str, expected: str) -> None:
    assert engine.parse_sync(text).best.name == expected


def test_the_embedded_model_is_reused_from_its_cache(tmp_path: Path) -> None:
    first = EmbeddedEngine.from_files([DATA], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("embedded-*.pickle"))) == 1
    second = EmbeddedEngine.from_files([DATA], cache_dir=tmp_path)
    assert second.model.data_fingerprint == first.model.data_fingerprint
    assert second.parse_sync("oplata").best.name == first.parse_sync("oplata").best.name


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ile kosztuje karta pobytu", "pl"),
        ("ile kosztuje karta pobytu?", "pl"),
        ("Dzień dobry, mam pytanie o zezwolenie", "pl"),
        ("скільки коштує карта побиту", "uk"),
        ("штамп виїзд?", "uk"),
        ("сколько стоит карта побыту", "ru"),
        ("карта побыту", "ru"),
        ("skolko stoit karta pobytu", "ru"),
        ("skilky koshtuie karta pobytu", "uk"),
        ("how much is the residence card", "en"),
        ("sir my visa is expiring what to do", "en"),
        ("zaświadczenie з MOS замість штампу", "uk"),
        ("студент може працювати", "uk"),
    ],
)
def test_language_detection_on_short_mixed_and_transliterated_text(
    detector: LanguageDetector, text: str, language: str
) -> None:
    assert detector.detect(text).language == language


def test_language_detection_is_accurate_on_the_held_out_set(detector: LanguageDetector) -> None:
    held_out = read_test_file(TEST_FILE)
    correct = sum(detector.detect(example.text).language == example.language for example in held_out)
    assert correct / len(held_out) >= 0.95


def test_scores_count_precision_recall_and_confusions() -> None:
    examples = [
        LabelledExample("a", "faq/fees", "pl"),
        LabelledExample("b", "faq/fees", "uk"),
        LabelledExample("c", "out_of_scope", "en"),
        LabelledExample("d", "out_of_scope", "en"),
    ]
    report = score("t", examples, ["faq/fees", "faq/visa_extension", "out_of_scope", "faq/fees"])
    assert report.accuracy == 0.5
    assert report.per_intent["faq/fees"].precision == 0.5
    assert report.per_intent["faq/fees"].recall == 0.5
    assert report.out_of_scope_rejection == 0.5
    assert report.language_accuracy("en") == 0.5
    assert ("faq/fees", "faq/visa_extension", 1) in report.confusions


def test_rasa_response_selector_picks_the_topic_inside_faq() -> None:
    payload = {
        "intent": {"name": "faq", "confidence": 0.9},
        "intent_ranking": [{"name": "faq", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}],
        "response_selector": {
            "faq": {
                "ranking": [
                    {"intent_response_key": "faq/fees", "confidence": 0.8},
                    {"intent_response_key": "faq/residence_card", "confidence": 0.2},
                ]
            }
        },
        "entities": [{"entity": "case_number", "value": "WSC-II-P.6151.1.2025"}],
    }
    result = result_from_rasa("x", payload)
    assert result.intent == "faq"
    assert result.topic_id == "fees"
    assert result.confidence == pytest.approx(0.72)
    assert result.entities == {"case_number": "WSC-II-P.6151.1.2025"}
    assert [score.name for score in result.ranking][:2] == ["faq/fees", "faq/residence_card"]


def test_the_fast_scorer_agrees_with_scikit_learn(engine: EmbeddedEngine, detector: LanguageDetector) -> None:
    import numpy as np

    from bot.nlu.embedded import normalise

    for example in read_test_file(TEST_FILE)[::25]:
        text = normalise(example.text)
        expected = engine.model.pipeline.predict_proba([text])[0]
        assert np.allclose(engine.scorer.probabilities(text), expected, atol=1e-9)
        lowered = example.text.lower()
        expected_language = detector._pipeline.predict_proba([lowered])[0]
        assert np.allclose(detector._scorer.probabilities(lowered), expected_language, atol=1e-9)


def test_a_message_with_no_known_features_still_gets_probabilities(engine: EmbeddedEngine) -> None:
    import numpy as np

    probabilities = engine.scorer.probabilities("⌘⌘⌘ ⌘⌘")
    assert not np.isnan(probabilities).any()
    assert probabilities.sum() == pytest.approx(1.0)
    assert engine.parse_sync("⌘⌘⌘ ⌘⌘").best.confidence < 0.5, "no evidence means no confident answer"


def test_without_training_data_the_letter_and_word_rules_still_work() -> None:
    rules_only = LanguageDetector(None)
    assert rules_only.detect("чи можна їхати").language == "uk"
    assert rules_only.detect("что нужно сделать").language == "ru"
    assert rules_only.detect("how do I get the card").language == "en"
    assert rules_only.detect("gdzie mogę złożyć wniosek").language == "pl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("check my case WSC-II-P.6151.12345.2025 please", "WSC-II-P.6151.12345.2025"),
        ("мій номер wsc ii s 6151 2301 2025", "WSC-II-S.6151.2301.2025"),
        ("sprawa WSC-II-O.6151.777.2026, data urodzenia 01.02.1990", "WSC-II-O.6151.777.2026"),
        ("moja sprawa trwa 8 miesięcy", None),
    ],
)
def test_case_numbers_are_found_in_any_spelling(text: str, expected: str | None) -> None:
    from bot.nlu.entities import case_number

    assert case_number(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("punkt w Tarnowie godziny", "TARNOW"),
        ("де пункт у Новому Сончі", "NOWY-SACZ"),
        ("Przy Rondzie 6 otwarte w poniedzialek?", "KRK-RONDO"),
        ("офис на ul. Basztowej", "KRK-BASZTOWA"),
        ("в Кракові", "KRAKOW"),
        ("jak zapłacić opłatę", None),
    ],
)
def test_pid_points_are_recognised_by_town_or_street(text: str, code: str | None) -> None:
    from bot.nlu.entities import place

    assert place(text) == code


def test_the_embedded_engine_returns_the_entities(engine: EmbeddedEngine) -> None:
    result = engine.parse_sync("sprawdz moja sprawe WSC-II-P.6151.12345.2025 w Tarnowie")
    assert result.entities == {"case_number": "WSC-II-P.6151.12345.2025", "town": "TARNOW"}


def test_backlog_groups_the_same_question_in_cyrillic_and_in_transliteration() -> None:
    from knowledge_base.backlog import cluster

    texts = [
        "skolko stoit parkovka vozle urzedu",
        "сколько стоит парковка возле ужонда",
        "how do I adopt a cat in krakow",
        "skolko stoit parkovka u urzedu?",
    ]
    groups = cluster(texts)
    assert sorted(groups[0]) == [0, 1, 3]
    assert [2] in groups
