"""Multi-step dialogues written once for every channel: a flow is a list of steps.

A step says what it asks (a text and the actions it offers) and what it accepts from the person (an
action or a text), and names the field it stores the answer in. When the last step is answered the
flow finishes and makes the closing reply. The state (which flow, which step, what was collected)
lives in the person's state, so a flow survives between messages, workers and channels' retries.

A person is never trapped: "cancel" leaves any flow, and a message a step does not accept (a new
question typed instead of pressing a button) leaves the flow and is answered as a question. A step
may instead say an answer was meant for it but is unusable ("31.02.1990" for a date): the step is
asked again with a word on what was wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.replies import Action, ActionName, CaseInfo, TicketInfo
from bot.state import FlowState, PersonRef, PersonState
from infoopt.core.i18n import say
from tickets.models import Conversation, Ticket

if TYPE_CHECKING:
    from cases.lookup import CaseDesk


@dataclass(frozen=True, slots=True)
class Event:
    """What a person sent: a text, or an action they chose (with its value)."""

    text: str = ""
    action: ActionName | None = None
    value: str | None = None
    language: str | None = None  # the language the person chose in the client, if any
    client_language: str | None = None  # the language of the person's app (a hint, not a choice)
    contact: str | None = None  # how to reach the person outside the channel: a caller's number
    question: str | None = None  # for a vote from a client that keeps no conversation: what was asked
    # Something other than text: a photo or document (with `attachment`), or a voice note, sticker, ...
    media: str | None = None
    attachment: dict[str, str | int | None] | None = None  # file id, name, size, mime type
    # The network address or phone number the message came from (not a chat's or a session's id).
    origin: str | None = None


def consultant_action(language: str) -> Action:
    """The way to a person, offered under every reply that may leave someone stuck."""
    return Action(ActionName.CONSULTANT, None, say(language, "Consultant"))


@dataclass(frozen=True, slots=True)
class FlowContext:
    """Everything a step may use to ask and to check an answer."""

    session: AsyncSession
    person: PersonRef
    state: PersonState
    language: str
    now: datetime
    conversation: Conversation | None = None  # the person's transcript (None for a client keeping none)
    entities: dict[str, str] = field(default_factory=dict)  # what the NLU found in the last message
    # The topic the NLU made of the person's last question, if any (a ticket carries it).
    topic_id: str | None = None
    # Called with a ticket and what happened to it (created, person_wrote, ...) for the live queue.
    on_ticket: Callable[[Ticket, str], None] | None = None
    contact: str | None = None  # a caller's number, for a call back
    # The topic the NLU is confident a text is about, if any (for a ticket described in words).
    classify: Callable[[str], Awaitable[str | None]] | None = None
    # The network address or phone number the message came from: attempt limits that a new chat or
    # session id cannot escape count by it.
    origin: str | None = None
    cases: CaseDesk | None = None  # the case-status lookups (None where cases are not served)

    @property
    def fields(self) -> dict[str, str]:
        assert self.state.flow is not None
        return self.state.flow.fields


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a step says and offers."""

    text: str
    actions: tuple[Action, ...] = ()
    ticket: TicketInfo | None = None  # set when the flow created a ticket
    # What the step waits for when it is not free text: "digits" for a number a caller keys in.
    entry: str | None = None
    case: CaseInfo | None = None  # set when the flow looked a case up


@dataclass(frozen=True, slots=True)
class Retry:
    """An answer meant for the step but unusable: the step is asked again after `note`."""

    note: str


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    ask: Callable[[FlowContext], Awaitable[Prompt]]
    # The value to store from the event, or None when the step does not take it.
    accept: Callable[[FlowContext, Event], Awaitable[str | Retry | None]]
    stores: str
    private: bool = False  # the answer stays out of the transcript (a date of birth)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A flow's answer to one event: a prompt for the next step, or the flow's closing words."""

    prompt: Prompt
    finished: bool


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    # The closing reply's text and actions, from the collected fields.
    finish: Callable[[FlowContext], Awaitable[Prompt]]

    def step(self, name: str) -> Step | None:
        return next((step for step in self.steps if step.name == name), None)

    async def start(self, context: FlowContext, fields: dict[str, str] | None = None) -> Outcome:
        """Begin the flow for this person (with what is already known) and ask its first open question."""
        context.state.flow = FlowState(self.name, self.steps[0].name, dict(fields or {}))
        return await self._next(context)

    async def handle(self, context: FlowContext, event: Event) -> Outcome | None:
        """Take the person's answer to the current step; None when the event is not an answer."""
        assert context.state.flow is not None
        current = self.step(context.state.flow.step)
        if current is None:  # a flow changed between releases: start it over
            return await self.start(context)
        value = await current.accept(context, event)
        if value is None:
            return None
        if isinstance(value, Retry):
            again = await current.ask(context)
            return Outcome(replace(again, text=f"{value.note}\n\n{again.text}"), finished=False)
        context.fields[current.stores] = value
        return await self._next(context)

    async def _next(self, context: FlowContext) -> Outcome:
        assert context.state.flow is not None
        for step in self.steps:
            if step.stores not in context.fields:
                context.state.flow.step = step.name
                return Outcome(await step.ask(context), finished=False)
        closing = await self.finish(context)
        context.state.flow = None
        return Outcome(closing, finished=True)
