"""decide(): answer, ask back, say it is not our business, or hand over — from the NLU ranking alone."""

from __future__ import annotations

import pytest

from bot.conversation import DecisionPolicy, decide
from bot.nlu.engine import IntentScore, NluResult
from bot.replies import ReplyKind

POLICY = DecisionPolicy(answer=0.45, margin=0.2, floor=0.15)


def ranking(*scores: tuple[str, float]) -> NluResult:
    ranked = tuple(IntentScore(name, confidence) for name, confidence in scores)
    return NluResult(text="x", best=ranked[0], ranking=ranked, engine="test")


@pytest.mark.parametrize(
    ("scores", "kind", "intent", "topics"),
    [
        # a clear winner is answered
        ((("faq/fees", 0.80), ("faq/residence_card", 0.10)), ReplyKind.ANSWER, "faq", ["fees"]),
        # confident but too close to the runner-up: ask back with both
        (
            (("faq/fees", 0.50), ("faq/residence_card", 0.40)),
            ReplyKind.CLARIFY,
            "faq",
            ["fees", "residence_card"],
        ),
        # not confident enough: ask back with up to three
        (
            (
                ("faq/fees", 0.30),
                ("faq/residence_card", 0.25),
                ("faq/blue_card", 0.20),
                ("faq/job_loss", 0.10),
            ),
            ReplyKind.CLARIFY,
            "faq",
            ["fees", "residence_card", "blue_card"],
        ),
        # exactly at the answer threshold with the margin: answered
        ((("faq/fees", 0.45), ("faq/residence_card", 0.25)), ReplyKind.ANSWER, "faq", ["fees"]),
        # nothing understood
        ((("faq/fees", 0.10), ("faq/residence_card", 0.05)), ReplyKind.FALLBACK, "nlu_fallback", []),
        # small talk and requests win when above the floor
        ((("greet", 0.50), ("faq/fees", 0.30)), ReplyKind.SMALLTALK, "greet", []),
        ((("request_human", 0.20), ("faq/fees", 0.19)), ReplyKind.HANDOFF, "request_human", []),
        (
            (("check_case_status", 0.60), ("faq/case_status", 0.30)),
            ReplyKind.CASE_STATUS,
            "check_case_status",
            [],
        ),
        # out of scope: said honestly when confident, else still out of scope when no topic is plausible
        ((("out_of_scope", 0.70), ("faq/fees", 0.05)), ReplyKind.OUT_OF_SCOPE, "out_of_scope", []),
        ((("out_of_scope", 0.30), ("faq/fees", 0.04)), ReplyKind.OUT_OF_SCOPE, "out_of_scope", []),
        # out of scope but a topic is plausible: offer the topics rather than refuse
        (
            (("out_of_scope", 0.30), ("faq/fees", 0.25), ("faq/blue_card", 0.10)),
            ReplyKind.CLARIFY,
            "faq",
            ["fees", "blue_card"],
        ),
    ],
)
def test_decide(
    scores: tuple[tuple[str, float], ...], kind: ReplyKind, intent: str, topics: list[str]
) -> None:
    decision = decide(ranking(*scores), POLICY)
    assert decision.kind is kind
    assert decision.intent == intent
    assert [score.topic_id for score in decision.topics] == topics


def test_a_greeting_before_a_question_is_not_answered_as_small_talk() -> None:
    scores = (
        IntentScore("greet", 0.40),
        IntentScore("faq/residence_card", 0.30),
        IntentScore("faq/fees", 0.10),
    )
    long_call = NluResult(
        text="halo halo dzień dobry ja dzwonię bo dostałem sms że karta jest do odbioru",
        best=scores[0],
        ranking=scores,
        engine="test",
    )
    decision = decide(long_call, POLICY)
    assert decision.kind is ReplyKind.CLARIFY and decision.topics[0].topic_id == "residence_card"
    short = NluResult(text="dzień dobry", best=scores[0], ranking=scores, engine="test")
    assert decide(short, POLICY).kind is ReplyKind.SMALLTALK, "a greeting alone is still a greeting"


def test_the_phone_confirms_the_likeliest_topic_where_a_chat_offers_three() -> None:
    close = ranking(("faq/fees", 0.40), ("faq/residence_card", 0.30), ("faq/blue_card", 0.20))
    chat = decide(close, DecisionPolicy().for_channel("web"))
    assert chat.kind is ReplyKind.CLARIFY
    assert [score.topic_id for score in chat.topics] == ["fees", "residence_card", "blue_card"]
    phone = decide(close, DecisionPolicy().for_channel("voice"))
    assert phone.kind is ReplyKind.CLARIFY
    assert [score.topic_id for score in phone.topics] == ["fees"], "one yes/no question on the phone"


def test_on_the_phone_a_lone_plausible_topic_is_confirmed_not_answered() -> None:
    # Short of the lead, but no other topic is plausible: a chat answers, the phone asks first.
    lone = ranking(("faq/fees", 0.40), ("greet", 0.35), ("faq/blue_card", 0.07))
    policy = DecisionPolicy(answer=0.3, margin=0.35, floor=0.15)
    assert decide(lone, policy).kind is ReplyKind.ANSWER
    phone = decide(lone, DecisionPolicy(answer=0.3, margin=0.35, floor=0.15, choices=1))
    assert phone.kind is ReplyKind.CLARIFY
    assert [score.topic_id for score in phone.topics] == ["fees"]


def test_an_engine_with_thresholds_of_its_own_is_decided_by_them() -> None:
    """Rasa scales its confidences its own way: its rankings get its thresholds, the embedded engine's
    the shared ones; the channel's adjustment applies on top of either."""
    policy = DecisionPolicy(answer=0.45, margin=0.3, floor=0.25, engines=(("rasa", 0.8, 0.5, 0.3),))
    scores = (IntentScore("faq/fees", 0.7), IntentScore("faq/residence_card", 0.1))
    by_rasa = NluResult(text="x", best=scores[0], ranking=scores, engine="rasa")
    embedded = NluResult(text="x", best=scores[0], ranking=scores, engine="embedded")
    assert decide(embedded, policy.for_engine("embedded")).kind is ReplyKind.ANSWER
    assert decide(by_rasa, policy.for_engine("rasa")).kind is ReplyKind.CLARIFY, "0.7 is short of Rasa's 0.8"
    on_the_phone = policy.for_engine("rasa").for_channel("voice")
    assert (on_the_phone.answer, on_the_phone.choices) == (0.8, 1)
