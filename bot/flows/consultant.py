"""The way to a person: choose an information point (PID), then learn how to reach a consultant there.

Tickets do not exist yet, so this flow never claims to pass anything on: it says plainly how to reach
a consultant now (the point's hours today, when it opens next, the INFO.OPT line and e-mail). The
tickets issue extends it with a description, consent and the ticket itself.
"""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date, format_time

from bot.flows import Event, Flow, FlowContext, Prompt, Step
from bot.replies import Action, ActionName
from infoopt.core.i18n import say
from tickets.offices import OfficeDay, UnknownOffice, active_offices, get_office, office_day

NAME = "consultant"


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
    named = context.entities.get("town")
    offices.sort(key=lambda office: office.code != named)  # the town the person named comes first
    return Prompt(
        say(
            context.language, "Which information point (PID) suits you best? Today's hours are next to each."
        ),
        tuple(
            Action(ActionName.CHOOSE_OFFICE, office.code, office_label(office, context.language))
            for office in offices
        ),
    )


async def _accept_office(context: FlowContext, event: Event) -> str | None:
    if event.action is not ActionName.CHOOSE_OFFICE:
        return None
    try:
        office = await get_office(context.session, event.value or "")
    except UnknownOffice:
        return None
    return office.code if office.active else None


def _how_to_reach(office: OfficeDay, context: FlowContext) -> str:
    language, place = context.language, _place(office)
    if not office.confirmed:
        return say(language, "{place}: ask INFO.OPT whether this point is open, and when.", place=place)
    if office.open_now and office.today is not None:
        return say(
            language,
            "{place}: open now, until {closes}.",
            place=place,
            closes=_clock(office.today[1], language),
        )
    if office.next_opening is None:
        return say(language, "{place}: ask INFO.OPT when this point is open.", place=place)
    return say(
        language,
        "{place}: opens {day} at {time}.",
        place=place,
        day=_day(office.next_opening, context.now, language),
        time=_clock(office.next_opening, language),
    )


async def _finish(context: FlowContext) -> Prompt:
    chosen = office_day(await get_office(context.session, context.fields["office"]), context.now)
    language = context.language
    text = "\n\n".join(
        [
            say(
                language,
                "I cannot pass your question to a consultant myself yet. This is how you reach one now:",
            ),
            _how_to_reach(chosen, context),
            say(
                language,
                "INFO.OPT line: 12 210 20 20, e-mail info.opt@muw.pl. Have your case number ready if you have one.",
            ),
        ]
    )
    return Prompt(text)


CONSULTANT = Flow(
    name=NAME,
    steps=(Step("office", ask=_ask_office, accept=_accept_office, stores="office"),),
    finish=_finish,
)
