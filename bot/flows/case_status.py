""" "What is happening with my case?": the case number, then the date of birth, then the stage of that
case in the person's language, with what it means, what to do next and the matching answer.

Written once for every channel; on the phone both are keyed in (`entry="digits"`). An unknown number
and a wrong date of birth get the same words. Past the attempt limits (cases.lookup) nothing is looked
up and the person is shown the way to a consultant. The date of birth never reaches the transcript
(its step is private) and the stage is told only after both match.
"""

from __future__ import annotations

import re
from datetime import date

from babel.dates import format_date

from bot.flows import Event, Flow, FlowContext, Prompt, Retry, Step, consultant_action
from bot.replies import Action, ActionName, CaseInfo
from cases.lookup import MIN_DIGITS, Asker
from cases.models import CaseStage, LookupOutcome
from cases.numbers import case_digits, find_case_number, spoken_digits
from cases.service import parse_birth_date
from infoopt.core.i18n import N_, say
from infoopt.core.languages import Channel

NAME = "case_status"
# What is left of an answer once its digits, separators and number words are gone: this few words
# ("my number is …") still make it an attempt at the step; more make it a new question.
_FEW_WORDS = 3
_WORD = re.compile(r"[^\W\d_]+")

STAGE_TITLES = {
    CaseStage.RECEIVED: N_("application received"),
    CaseStage.FORMAL_CHECK: N_("formal check of the application"),
    CaseStage.MISSING_DOCUMENTS: N_("missing documents requested"),
    CaseStage.FINGERPRINTS: N_("personal appearance and fingerprints"),
    CaseStage.UNDER_REVIEW: N_("under review"),
    CaseStage.DECISION_ISSUED: N_("decision issued"),
    CaseStage.CARD_READY: N_("residence card ready"),
    CaseStage.CLOSED: N_("case finished"),
}
# What each stage means and what to do next. Sources, checked 2026-12-02: Kodeks postępowania
# administracyjnego art. 41 (a party tells the office of a new address) and art. 64 § 2 (a summons to
# complete an application names its deadline); malopolska.uw.gov.pl/PressArticlePage.aspx?id=12218 and
# infoopt.pl/rezerwacja-terminu-na-odbior-karty-pobytu/ (the card: an SMS, a booked time, collected in
# person with the passport); gazetaprawna.pl (the personal appearance: passport, fingerprints,
# signature). The matching knowledge-base answer carries the details and their sources.
STAGE_NEXT = {
    CaseStage.RECEIVED: N_(
        "The office has registered your application. You need not do anything now: watch for letters and text messages from the office, and answer any summons by its deadline."
    ),
    CaseStage.FORMAL_CHECK: N_(
        "The office is checking that your application is complete. If something is missing, you will get a summons saying what to send and by when."
    ),
    CaseStage.MISSING_DOCUMENTS: N_(
        "The office needs more documents or information from you. Send what the summons lists by the deadline written in it. If you did not get the summons, ask a consultant."
    ),
    CaseStage.FINGERPRINTS: N_(
        "You need to come to the office in person to show your passport and give your fingerprints. Come at the time given in the summons, with your passport."
    ),
    CaseStage.UNDER_REVIEW: N_(
        "The office is examining your case. You need not do anything now; if your address changes, tell the office."
    ),
    CaseStage.DECISION_ISSUED: N_(
        "A decision has been issued in your case and is delivered to you in writing. Read it carefully: it says whether and by when you can appeal."
    ),
    CaseStage.CARD_READY: N_(
        "Your residence card is ready. Book a time to collect it as the office's text message says, and collect it in person with your passport."
    ),
    CaseStage.CLOSED: N_("Your case is finished. If you have a question about it, a consultant can help."),
}
# The knowledge-base answer that goes with each stage.
STAGE_TOPICS = {
    CaseStage.RECEIVED: "stamp_and_legal_stay",
    CaseStage.FORMAL_CHECK: "missing_documents_summons",
    CaseStage.MISSING_DOCUMENTS: "missing_documents_summons",
    CaseStage.FINGERPRINTS: "personal_appearance_fingerprints",
    CaseStage.UNDER_REVIEW: "processing_time_delay",
    CaseStage.DECISION_ISSUED: "decision_appeal",
    CaseStage.CARD_READY: "residence_card",
    CaseStage.CLOSED: "contact_offices",
}

ASK_NUMBER = N_(
    "To check your case I need its number and your date of birth. Write the case number as it is on the letter from the office, for example WSC-II-S.6151.1234.2026."
)
KEY_NUMBER = N_(
    "To check your case, key in the digits of your case number, then press the hash key. For a consultant, press 0 and the hash key."
)
ASK_BIRTH = N_("Now your date of birth, for example 17.05.1990.")
KEY_BIRTH = N_("Now key in your date of birth as eight digits: day, month and year. Then press the hash key.")
NUMBER_UNREADABLE = N_("That does not look like a whole case number.")
BIRTH_UNREADABLE = N_("That is not a date I can read.")
FOUND = N_("Case {number}: {stage} (since {date}).")
FOUND_SPOKEN = N_("Your case: {stage} (since {date}).")
NO_MATCH = N_(
    "I could not find a case with this number and this date of birth. Check both on the letter from the office and try again, or ask a consultant."
)
REFUSED = N_(
    "For the safety of everyone's data I cannot check a case here right now: there were too many attempts. A consultant can help you."
)
UNAVAILABLE = N_(
    "The bot cannot check a specific case yet. The information points (PID) and the INFO.OPT line 12 210 20 20 tell you the state of your case; have your case number ready."
)


def _by_keypad(context: FlowContext) -> bool:
    return context.person.channel is Channel.VOICE


def _attempt(text: str) -> bool:
    """Whether a message that is not a usable answer was still meant as one (digits and a few words)."""
    if not any(char.isdigit() for char in text) and not spoken_digits(text):
        return False
    return len(_WORD.findall(re.sub(r"\d+", " ", text))) <= _FEW_WORDS


async def _ask_number(context: FlowContext) -> Prompt:
    language = context.language
    if _by_keypad(context):
        return Prompt(say(language, KEY_NUMBER), entry="digits")
    return Prompt(
        say(language, ASK_NUMBER),
        (
            Action(ActionName.FULL_ANSWER, "case_status", say(language, "Other ways to check")),
            consultant_action(language),
        ),
    )


async def _accept_number(context: FlowContext, event: Event) -> str | Retry | None:
    if event.action is not None:
        return None
    written = find_case_number(event.text)
    if written is not None:
        return written
    digits = case_digits(event.text)
    if len(digits) < MIN_DIGITS:
        digits = spoken_digits(event.text)  # said on the phone, or written out in words
    if len(digits) >= MIN_DIGITS and _attempt(event.text):
        return digits
    if _attempt(event.text):
        return Retry(say(context.language, NUMBER_UNREADABLE))
    return None


async def _ask_birth(context: FlowContext) -> Prompt:
    language = context.language
    if _by_keypad(context):
        return Prompt(say(language, KEY_BIRTH), entry="digits")
    return Prompt(say(language, ASK_BIRTH), (consultant_action(language),))


async def _accept_birth(context: FlowContext, event: Event) -> str | Retry | None:
    if event.action is not None:
        return None
    born = parse_birth_date(event.text)
    if born is not None:
        return born.isoformat()
    if _attempt(event.text):
        return Retry(say(context.language, BIRTH_UNREADABLE))
    return None


async def _finish(context: FlowContext) -> Prompt:
    language = context.language
    if context.cases is None:
        return Prompt(say(language, UNAVAILABLE), (consultant_action(language),))
    asker = Asker(
        channel=context.person.channel.value,
        person=context.person.key,
        origin=context.origin or context.person.key,
    )
    result = await context.cases.lookup(
        context.session,
        context.fields["number"],
        date.fromisoformat(context.fields["birth"]),
        asker=asker,
        now=context.now,
    )
    if result.outcome is LookupOutcome.REFUSED:
        return Prompt(say(language, REFUSED), (consultant_action(language),))
    record = result.record
    if result.outcome is LookupOutcome.NO_MATCH or record is None:
        return Prompt(
            say(language, NO_MATCH),
            (Action(ActionName.CASE_STATUS, None, say(language, "Try again")), consultant_action(language)),
        )
    stage = say(language, STAGE_TITLES[record.stage])
    since = format_date(record.stage_date, "long", locale=language)
    headline = (
        say(language, FOUND_SPOKEN, stage=stage, date=since)
        if _by_keypad(context)
        else say(language, FOUND, number=record.case_number, stage=stage, date=since)
    )
    return Prompt(
        f"{headline}\n\n{say(language, STAGE_NEXT[record.stage])}",
        (
            Action(ActionName.FULL_ANSWER, STAGE_TOPICS[record.stage], say(language, "More about this step")),
            consultant_action(language),
        ),
        case=CaseInfo(number=record.case_number, stage=record.stage.value, stage_date=record.stage_date),
    )


def start_fields(text: str) -> dict[str, str]:
    """What the lookup knows from the message that started it: a case number written in it."""
    number = find_case_number(text) if text else None
    return {"number": number} if number else {}


CASE_STATUS = Flow(
    name=NAME,
    steps=(
        Step("number", ask=_ask_number, accept=_accept_number, stores="number"),
        Step("birth", ask=_ask_birth, accept=_accept_birth, stores="birth", private=True),
    ),
    finish=_finish,
)
