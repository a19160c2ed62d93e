"""The way to a person (the handoff): choose an information point (PID), describe the question, consent
to the processing of personal data, and get a ticket number with the time to expect an answer.

Written once for every channel. A description is not asked for when the last question already says
enough. "No" to consent ends politely with the phone number: nothing is passed on, and the bot says so.
"""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date, format_time

from bot.flows import Event, Flow, FlowContext, Prompt, Step
from bot.replies import Action, ActionName, TicketInfo
from bot.text import has_content
from infoopt.core.i18n import say
from tickets.models import Ticket, TicketPriority
from tickets.offices import (
    WARSAW,
    OfficeDay,
    UnknownOffice,
    active_offices,
    get_office,
    nearest_office,
    office_day,
)
from tickets.service import open_ticket

NAME = "consultant"
ANY_OFFICE = "any"  # "wherever is quickest": the town the person named, else the shared queue
# A question of at least this many words describes itself; "talk to a person" does not.
SELF_DESCRIBING_WORDS = 4
MAX_DESCRIPTION = 2000
YES_WORDS = frozenset(
    {"yes", "y", "tak", "так", "да", "ok", "okay", "ок", "zgoda", "згоден", "згодна", "согласен", "согласна"}
)
NO_WORDS = frozenset({"no", "n", "nie", "ні", "нет", "не"})


def _clock(moment: datetime, language: str) -> str:
    return format_time(moment, "H:mm", locale=language)


def _day(moment: datetime, now: datetime, language: str) -> str:
    days = (moment.date() - now.date()).days
    if days == 0:
        return say(language, "today")
    if days == 1:
        return say(language, "tomorrow")
    return format_date(moment.date(), "EEEE d.MM", locale=language)


def _place(office: OfficeDay) -> str:
    return f"{office.town}, {office.address.removesuffix(', ' + office.town)}"


def office_label(office: OfficeDay, language: str) -> str:
    """How a PID point is offered as a button: where it is and its hours today."""
    place = _place(office)
    if not office.confirmed:
        return say(language, "{place} (hours to be confirmed)", place=place)
    if office.today is None:
        return say(language, "{place} (closed today)", place=place)
    opens, closes = office.today
    return say(
        language,
        "{place} (today {opens}–{closes})",
        place=place,
        opens=_clock(opens, language),
        closes=_clock(closes, language),
    )


async def _offices(context: FlowContext) -> list[OfficeDay]:
    return [office_day(office, context.now) for office in await active_offices(context.session)]


async def _ask_office(context: FlowContext) -> Prompt:
    offices = await _offices(context)
    named = nearest_office(context.entities.get("town") or context.fields.get("town"))
    offices.sort(key=lambda office: office.code != named)  # the town the person named comes first
    return Prompt(
        say(
            context.language, "Which information point (PID) suits you best? Today's hours are next to each."
        ),
        (
            *(
                Action(ActionName.CHOOSE_OFFICE, office.code, office_label(office, context.language))
                for office in offices
            ),
            Action(
                ActionName.CHOOSE_OFFICE, ANY_OFFICE, say(context.language, "Any point: the quickest answer")
            ),
        ),
    )


async def _accept_office(context: FlowContext, event: Event) -> str | None:
    if event.action is not ActionName.CHOOSE_OFFICE:
        return None
    if event.value == ANY_OFFICE:
        return ANY_OFFICE
    try:
        office = await get_office(context.session, event.value or "")
    except UnknownOffice:
        return None
    return office.code if office.active else None


async def _ask_description(context: FlowContext) -> Prompt:
    return Prompt(
        say(
            context.language,
            "Describe your question in a few sentences: what you need, and your case number if you have one. A consultant will read it.",
        )
    )


async def _accept_description(context: FlowContext, event: Event) -> str | None:
    if event.action is not None or not has_content(event.text):
        return None
    return event.text[:MAX_DESCRIPTION]


async def _ask_consent(context: FlowContext) -> Prompt:
    language = context.language
    return Prompt(
        say(
            language,
            "To pass your question on, the Voivodeship Office will process what you wrote in this conversation (and your contact on this channel) to answer you. It is kept for as long as your request needs it. Do you agree?",
        ),
        (
            Action(ActionName.CONSENT, "yes", say(language, "Yes, I agree")),
            Action(ActionName.CONSENT, "no", say(language, "No")),
        ),
    )


async def _accept_consent(context: FlowContext, event: Event) -> str | None:
    if event.action is ActionName.CONSENT and event.value in ("yes", "no"):
        return event.value
    if event.action is None:
        word = event.text.strip().strip(".!").casefold()
        if word in YES_WORDS:
            return "yes"
        if word in NO_WORDS:
            return "no"
    return None


def _when(moment: datetime, now: datetime, language: str) -> str:
    local, today = moment.astimezone(WARSAW), now.astimezone(WARSAW)
    return say(language, "{day} at {time}", day=_day(local, today, language), time=_clock(local, language))


def expectation(ticket: Ticket, office: OfficeDay | None, now: datetime, language: str) -> str:
    """When the person can expect an answer, from the point's hours ("Tarnów opens on Monday at 7:30…")."""
    due = _when(ticket.sla_due_at, now, language) if ticket.sla_due_at else None
    if office is None or not office.confirmed or due is None:
        return say(language, "Expect an answer by {due}.", due=due) if due else ""
    if office.open_now:
        return say(language, "{town} is open now; expect an answer by {due}.", town=office.town, due=due)
    if office.next_opening is None:
        return say(language, "Expect an answer by {due}.", due=due)
    return say(
        language,
        "{town} opens {when}; expect an answer by {due}.",
        town=office.town,
        when=_when(office.next_opening, now, language),
        due=due,
    )


async def _topic_of(context: FlowContext, description: str) -> str | None:
    return await context.classify(description) if context.classify else None


async def _routed(context: FlowContext) -> str | None:
    """No choice made: the nearest point to the town the person named, else the shared queue."""
    code = nearest_office(context.fields.get("town"))
    if code is None:
        return None
    try:
        office = await get_office(context.session, code)
    except UnknownOffice:
        return None
    return office.code if office.active else None


def ticket_info(ticket: Ticket) -> TicketInfo:
    return TicketInfo(
        number=ticket.number,
        office=ticket.office_code,
        status=ticket.status.value,
        expected_reply_by=ticket.sla_due_at.astimezone(WARSAW) if ticket.sla_due_at else None,
    )


async def _finish(context: FlowContext) -> Prompt:
    language = context.language
    if context.fields.get("consent") != "yes":
        return Prompt(
            say(
                language,
                "All right: I have not passed anything on. You can reach a consultant by phone: INFO.OPT 12 210 20 20 (e-mail info.opt@muw.pl).",
            )
        )
    choice = context.fields["office"]
    office_code = choice if choice != ANY_OFFICE else await _routed(context)
    ticket = await open_ticket(
        context.session,
        conversation=context.conversation,
        channel=context.person.channel,
        language=language,
        office_code=office_code,
        description=context.fields["description"],
        topic_id=context.fields.get("topic") or await _topic_of(context, context.fields["description"]),
        contact=context.contact,
        # A caller waiting for a call back goes first.
        priority=TicketPriority.HIGH if context.contact else TicketPriority.NORMAL,
        now=context.now,
    )
    if context.on_ticket:
        context.on_ticket(ticket, "created")
    office = office_day(await get_office(context.session, office_code), context.now) if office_code else None
    lines = [
        say(
            language,
            "Your question is with the consultants. Your request number: {number}.",
            number=ticket.number,
        ),
        expectation(ticket, office, context.now, language),
        say(language, "The answer will come here. You can add details by writing in this chat."),
    ]
    return Prompt(
        "\n\n".join(line for line in lines if line),
        (Action(ActionName.CLOSE_TICKET, ticket.number, say(language, "Close my request")),),
        ticket=ticket_info(ticket),
    )


def start_fields(context: FlowContext, question: str | None, *, asked_for_person: bool) -> dict[str, str]:
    """What the handoff knows before asking: the last question (if it says enough), the topic, the town."""
    fields: dict[str, str] = {}
    if question and not asked_for_person and len(question.split()) >= SELF_DESCRIBING_WORDS:
        fields["description"] = question[:MAX_DESCRIPTION]
    if context.topic_id:
        fields["topic"] = context.topic_id
    if context.entities.get("town"):
        fields["town"] = context.entities["town"]
    return fields


CONSULTANT = Flow(
    name=NAME,
    steps=(
        Step("office", ask=_ask_office, accept=_accept_office, stores="office"),
        Step("description", ask=_ask_description, accept=_accept_description, stores="description"),
        Step("consent", ask=_ask_consent, accept=_accept_consent, stores="consent"),
    ),
    finish=_finish,
)
