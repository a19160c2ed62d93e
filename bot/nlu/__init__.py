"""Understanding what a person wrote: one interface, two engines (the Rasa server and an embedded one)."""

from bot.nlu.engine import IntentScore, NluEngine, NluResult, NluUnavailable

__all__ = ["IntentScore", "NluEngine", "NluResult", "NluUnavailable"]
