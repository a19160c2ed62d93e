"""The conversation's metric: every turn counted once, by channel, language, input and the reply's kind.

A turn is one event a person sent (a typed question, a pressed button, a file) and the bot's reply to it;
`outcome` is the Reply's kind (answer, clarify, fallback, out_of_scope, handoff, ...), so the share of
questions answered outright, per language and channel, is one PromQL division away. No label ever holds
the person's words, their id or a topic they asked about.
"""

from __future__ import annotations

from prometheus_client import Counter

from bot.flows import Event
from bot.replies import Reply
from infoopt.core.languages import LANGUAGES, Channel
from infoopt.core.metrics import REGISTRY

QUESTIONS = Counter(
    "infoopt_questions_total",
    "Turns of the conversation by channel, language, input (text, action, media) and outcome (the reply's kind)",
    ["channel", "language", "input", "outcome"],
    registry=REGISTRY,
)


def count_turn(channel: Channel, event: Event, reply: Reply) -> None:
    """Count one turn; called once, where the conversation has worked out its reply."""
    language = reply.language if reply.language in LANGUAGES else "other"
    kind = "media" if event.media else "action" if event.action is not None else "text"
    QUESTIONS.labels(channel.value, language, kind, reply.kind.value).inc()
