"""The voice line: Twilio's webhooks answered with TwiML built by the `twilio` library, one more renderer
of the same conversation.

A call: a greeting and a language menu (keypad 1–4, or the language's name said), then "ask your
question" with speech recognition in that language; the answer is spoken, then 1 hears it again,
2 asks another question, 3 sends the full answer with its links by SMS, 0 reaches a consultant. Any
other reply's buttons (topics to choose, PID points, consent) become keypad digits. Silence, an
unknown key or a call the app has no state for gets a short reprompt or the way to a consultant —
never Twilio's "application error".
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from bot.flows import Event
from bot.replies import Action, ActionName, Reply, ReplyKind, actions_to_json
from bot.state import PersonRef
from bot.voice.calls import CallState, CallStore, masked
from bot.voice.speech import SPEECH_LANGUAGES, speakable
from infoopt.core import db
from infoopt.core.deps import get_services
from infoopt.core.errors import DomainError, Forbidden, NotFound
from infoopt.core.i18n import say
from infoopt.core.languages import LANGUAGES, Channel
from knowledge_base.topics import catalogue
from tickets.calls import record_call
from tickets.models import CallOutcome
from tickets.offices import UnknownOffice, get_office, is_open
from tickets.outbox import enqueue

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio/voice", include_in_schema=False)
LANGUAGE_DIGITS = {"1": "pl", "2": "uk", "3": "ru", "4": "en"}
SPOKEN_LANGUAGES = {
    "pl": ("polsk", "polish", "польськ", "польск"),
    "uk": ("ukrai", "україн", "украин", "ukrain"),
    "ru": ("rosyj", "russian", "русск", "россий", "російськ"),
    "en": ("english", "angiel", "англ"),
}
# A short spoken answer to "Do you mean …?" (what people say, recognised, not texts the line says).
SPOKEN_YES = {
    "pl": ("tak", "dokładnie", "zgadza", "oczywiście"),
    "uk": ("так", "ага", "авжеж", "звісно"),
    "ru": ("да", "ага", "верно", "конечно", "точно"),
    "en": ("yes", "yeah", "yep", "correct", "right"),
}
SPOKEN_NO = {"pl": ("nie",), "uk": ("ні", "нi", "не"), "ru": ("нет", "не"), "en": ("no", "nope")}
SHORT_ANSWER_WORDS = 3  # longer speech is a question in other words, not a yes or a no
MAX_FAILURES = 2
WITHHELD = "withheld"  # every caller without a number shares one set of attempt limits
MENU_DIGITS = "12345678"


class TwilioNotConfigured(NotFound):
    code = "not_found"


class SignatureRejected(Forbidden):
    code = "bad_signature"


async def twilio_form(request: Request) -> dict[str, str]:
    """The webhook's form, once its X-Twilio-Signature is checked against TWILIO_AUTH_TOKEN."""
    settings = get_services(request).settings
    token = settings.twilio.auth_token
    if token is None or not settings.public_url:
        raise TwilioNotConfigured("the voice line is not configured")
    form = {key: str(value) for key, value in (await request.form()).items()}
    url = (
        settings.public_url.rstrip("/")
        + request.url.path
        + (f"?{request.url.query}" if request.url.query else "")
    )
    signature = request.headers.get("x-twilio-signature", "")
    if not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        raise SignatureRejected("the request is not signed by Twilio")
    return form


TwilioForm = Annotated[dict[str, str], Depends(twilio_form)]


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


# Speech recognition hints per language: the knowledge base's titles, refreshed every few minutes.
_HINTS: dict[str, tuple[float, str]] = {}
HINTS_SECONDS = 600.0


async def prepare_hints(request: Request, language: str) -> None:
    """Words the caller is likely to say (the topics' titles in their language), for the recogniser."""
    cached = _HINTS.get(language)
    if cached and time.monotonic() - cached[0] < HINTS_SECONDS:
        return
    services = get_services(request)
    titles = []
    for topic_id in catalogue().topic_ids:
        article = await services.kb_cache.get(topic_id, language)
        if article is not None:
            titles.append(article.title.split(":")[0].split("(")[0].strip()[:100])
    _HINTS[language] = (time.monotonic(), ", ".join(dict.fromkeys(title for title in titles if title)))


class Voice:
    """Speaks and listens in one language, with the configured voice."""

    def __init__(self, request: Request, language: str) -> None:
        self.language = language if language in LANGUAGES else "pl"
        self.settings = get_services(request).settings
        self.code = SPEECH_LANGUAGES[self.language]
        self.voice = self.settings.twilio.voice(self.language)
        self.hints = _HINTS.get(self.language, (0.0, ""))[1] or None

    def say(self, target: VoiceResponse | Gather, text: str) -> None:
        target.say(text, voice=self.voice, language=self.code)

    def gather(self, *, speech: bool = True, entry: str | None = None) -> Gather:
        if entry == "digits":  # a number keyed in, ended by the hash key
            return Gather(
                input="dtmf",
                action="/twilio/voice/turn",
                method="POST",
                finish_on_key="#",
                timeout=10,
                action_on_empty_result=True,
            )
        return Gather(
            input="speech dtmf" if speech else "dtmf",
            action="/twilio/voice/turn",
            method="POST",
            language=self.code,
            num_digits=1,
            timeout=6,
            speech_timeout="auto" if speech else None,
            hints=self.hints if speech else None,
            action_on_empty_result=True,
        )


def _menu_prompt(language: str, menu: dict[str, dict[str, str | None]]) -> str:
    return " ".join(
        say(language, "Press {digit}: {label}.", digit=digit, label=str(entry["label"]))
        for digit, entry in menu.items()
    )


def _spoken_yes_or_no(speech: str, language: str) -> str:
    """Key 1 for a short spoken yes, key 2 for a no (in the call's language or English), nothing for
    anything else: that is a question in other words."""
    words = re.findall(r"\w+", speech.lower())
    if not words or len(words) > SHORT_ANSWER_WORDS:
        return ""
    languages = (language, "en")
    if any(words[0] in SPOKEN_NO.get(code, ()) for code in languages):
        return "2"
    return "1" if any(words[0] in SPOKEN_YES.get(code, ()) for code in languages) else ""


def _entry(action: Action) -> dict[str, str | None]:
    return actions_to_json([action])[0]


def _menu_for(reply: Reply, language: str) -> dict[str, dict[str, str | None]]:
    """What the keypad means after this reply."""
    if reply.entry == "digits":  # keying in a number: only 0 (then #) means something else
        menu: dict[str, dict[str, str | None]] = {}
    elif reply.kind in (ReplyKind.ANSWER, ReplyKind.FULL_ANSWER):
        menu = {
            "1": {"action": "repeat", "value": None, "label": say(language, "hear it again")},
            "2": {"action": "ask", "value": None, "label": say(language, "ask another question")},
            "3": {"action": "sms", "value": None, "label": say(language, "get the full answer by SMS")},
        }
        check = [a for a in reply.actions if a.action is ActionName.CASE_STATUS]
        if check:  # the answer on case status: the caller's own case looked up
            menu["4"] = _entry(check[0])
    elif reply.case is not None:  # a case's stage: again, by SMS, or the answer that goes with it
        menu = {
            "1": {"action": "repeat", "value": None, "label": say(language, "hear it again")},
            "2": {"action": "ask", "value": None, "label": say(language, "ask another question")},
            "3": {"action": "sms", "value": None, "label": say(language, "get this by SMS")},
        }
        more = [a for a in reply.actions if a.action is ActionName.FULL_ANSWER]
        if more:
            menu["4"] = _entry(more[0])
    else:
        menu = {}
        actions = [a for a in reply.actions if a.action not in (ActionName.CONSULTANT, ActionName.CANCEL)]
        if reply.kind is ReplyKind.CLARIFY and len(reply.options) == 1:  # "Do you mean …?": yes or no
            menu["1"] = {**_entry(actions[0]), "label": say(language, "yes")}
            menu["2"] = {
                "action": "ask",
                "value": None,
                "label": say(language, "no, I will ask in other words"),
            }
            actions = []
        elif reply.kind is ReplyKind.CLARIFY:
            actions = actions[:2]  # on the phone two choices are plenty
        for digit, action in zip(MENU_DIGITS, actions, strict=False):
            menu[digit] = _entry(action)
        if any(a.action is ActionName.CANCEL for a in reply.actions):
            menu["9"] = {"action": ActionName.CANCEL.value, "value": None, "label": say(language, "Cancel")}
    if reply.kind is not ReplyKind.HANDOFF or reply.ticket is None:
        menu["0"] = {
            "action": ActionName.CONSULTANT.value,
            "value": None,
            "label": say(language, "a consultant"),
        }
    return menu


def _sms_text(reply: Reply) -> str:
    """The answer as an SMS: the title, the short answer written out (account numbers and all), and the
    official links where the whole answer is (a full article would run to a dozen SMS parts)."""
    short = reply.text if not reply.markdown else ""
    article = reply.full_answer or ""
    first = short or (article.split("\n\n")[0] if article else "")
    links = "\n".join(reply.sources)
    body = "\n\n".join(part for part in (reply.title or "", first) if part)
    room = 1200 - len(links)
    return (
        body[:room].rstrip() + ("…" if len(body) > room else "") + ("\n\n" + links if links else "")
    ).strip()


async def hand_over_call(request: Request, state: CallState, reply: Reply) -> VoiceResponse:
    """A ticket was opened on the phone: put the caller through while the point is open and takes
    transfers; otherwise they hear when to expect the call back."""
    services = get_services(request)
    voice = Voice(request, reply.language)
    assert reply.ticket is not None
    state.ticket_number = reply.ticket.number
    office = None
    if reply.ticket.office:
        async with services.sessions() as session:
            with contextlib.suppress(UnknownOffice):
                office = await get_office(session, reply.ticket.office)
    response = VoiceResponse()
    if office is not None and office.phone and is_open(office.hours, services.conversation.now()):
        state.outcome = "transferred"
        voice.say(
            response,
            say(
                voice.language,
                "Your request number is {number}. I am putting you through to {town}; please hold.",
                number=_digits(reply.ticket.number),
                town=office.town,
            ),
        )
        dial = Dial(action="/twilio/voice/dial", method="POST", timeout=25)
        dial.number(office.phone)
        response.append(dial)
        return response
    state.outcome = "callback"
    voice.say(response, speakable(reply.text, voice.language))
    voice.say(response, say(voice.language, "We will call you back at this number. Goodbye."))
    response.hangup()
    return response


def _digits(number: str) -> str:
    """A ticket number as it is read out: letters and digits apart ("T A R, 2026, 1 2 3")."""
    prefix, year, serial = [*number.split("-"), "", ""][:3]
    return f"{' '.join(prefix)}, {year}, {' '.join(serial.lstrip('0') or '0')}"


def speak_reply(request: Request, state: CallState, reply: Reply) -> VoiceResponse:
    """The Reply as TwiML: said, then the menu (or a question to answer by voice) gathered."""
    voice = Voice(request, reply.language)
    text = speakable(reply.text, voice.language, markdown=reply.markdown)
    if reply.kind in (ReplyKind.ANSWER, ReplyKind.FULL_ANSWER):
        state.sms_text, state.sms_sent = _sms_text(reply), False
    elif reply.case is not None:
        state.sms_text, state.sms_sent = f"{reply.case.number}\n{reply.text}", False
    menu = _menu_for(reply, voice.language)
    state.menu, state.last_said, state.entry = menu, text, reply.entry
    state.confirming = reply.kind is ReplyKind.CLARIFY and len(reply.options) == 1
    response = VoiceResponse()
    if reply.kind is ReplyKind.HANDOFF and reply.ticket is not None:
        state.outcome = "callback"
        voice.say(response, text)
        voice.say(response, say(voice.language, "We will call you back at this number. Goodbye."))
        response.hangup()
        return response
    if reply.entry == "digits":
        gather = voice.gather(entry="digits")
        voice.say(gather, text)
        response.append(gather)
        return response
    gather = voice.gather(speech=True)
    voice.say(gather, text)
    prompt = _menu_prompt(voice.language, {d: e for d, e in menu.items() if d != "0"})
    if prompt:
        voice.say(gather, prompt)
    voice.say(gather, say(voice.language, "For a consultant, press 0."))
    response.append(gather)
    return response


def ask_question(request: Request, state: CallState, *, lead: str | None = None) -> VoiceResponse:
    voice = Voice(request, state.language or "pl")
    state.entry, state.confirming = None, False
    state.menu = {
        "0": {
            "action": ActionName.CONSULTANT.value,
            "value": None,
            "label": say(voice.language, "a consultant"),
        }
    }
    response = VoiceResponse()
    gather = voice.gather(speech=True)
    if lead:
        voice.say(gather, lead)
    voice.say(
        gather,
        say(voice.language, "Ask your question in a few words after the tone. For a consultant, press 0."),
    )
    response.append(gather)
    return response


def language_menu(request: Request) -> VoiceResponse:
    response = VoiceResponse()
    greeting = Voice(request, "pl")
    gather = Gather(
        input="dtmf speech",
        action="/twilio/voice/language",
        method="POST",
        num_digits=1,
        timeout=6,
        language="pl-PL",
        hints="polski, українська, русский, English",
        action_on_empty_result=True,
    )
    greeting.say(
        gather,
        say(
            "pl",
            "Welcome to INFO.OPT, the information line for foreigners of the Małopolska Voivodeship Office.",
        ),
    )
    for digit, language in LANGUAGE_DIGITS.items():
        Voice(request, language).say(gather, say(language, "For English, press {digit}.", digit=digit))
    response.append(gather)
    return response


@router.post("")
async def incoming_call(request: Request, form: TwilioForm) -> Response:
    """A new call: the greeting and the language menu."""
    calls = CallStore(get_services(request).redis)
    call_sid = form.get("CallSid", "")
    if await calls.load(call_sid) is None:  # Twilio may retry the webhook: the call starts once
        await calls.save(call_sid, CallState(caller=form.get("From", "")))
    return twiml(language_menu(request))


@router.post("/language")
async def choose_language(request: Request, form: TwilioForm) -> Response:
    calls = CallStore(get_services(request).redis)
    call_sid = form.get("CallSid", "")
    state = await calls.load(call_sid) or CallState(caller=form.get("From", ""))
    digits, speech = form.get("Digits", ""), form.get("SpeechResult", "").lower()
    language = LANGUAGE_DIGITS.get(digits) or next(
        (code for code, stems in SPOKEN_LANGUAGES.items() if any(stem in speech for stem in stems)), None
    )
    if language is None:
        state.failures += 1
        if state.failures <= MAX_FAILURES:
            await calls.save(call_sid, state)
            return twiml(language_menu(request))
        language = "pl"  # the office's language, after two tries
    state.language, state.failures = language, 0
    await prepare_hints(request, language)
    response = ask_question(request, state)
    await calls.save(call_sid, state)
    return twiml(response)


@router.post("/turn")
async def turn(request: Request, form: TwilioForm) -> Response:
    """What the caller said or pressed, through the conversation, spoken back (once: a retried request
    gets the same TwiML again)."""
    calls = CallStore(get_services(request).redis)
    token = request.headers.get("i-twilio-idempotency-token", "")
    remembered = await calls.remembered_reply(token)
    if remembered is not None:
        return Response(remembered, media_type="application/xml")
    response = await _turn(request, form)
    await calls.remember_reply(token, bytes(response.body).decode())
    return response


async def _turn(request: Request, form: dict[str, str]) -> Response:
    services = get_services(request)
    calls = CallStore(services.redis)
    call_sid = form.get("CallSid", "")
    state = await calls.load(call_sid)
    if state is None:  # a call this app has no memory of (expired, or state lost): start it over politely
        state = CallState(caller=form.get("From", ""))
        await calls.save(call_sid, state)
        return twiml(language_menu(request))
    language = state.language or "pl"
    await prepare_hints(request, language)
    digits, speech = form.get("Digits", "").strip(), form.get("SpeechResult", "").strip()
    if state.confirming and speech and not digits:
        digits = _spoken_yes_or_no(speech, language)
    event: Event | None = None
    origin = state.caller or WITHHELD
    if state.entry == "digits" and digits and digits != "0":  # a number keyed in for the conversation
        event = Event(text=digits, language=language, contact=state.caller, origin=origin)
    elif digits:
        entry = state.menu.get(digits[:1])
        if entry is None:
            return await _reprompt(
                request, calls, call_sid, state, say(language, "That key does nothing here.")
            )
        action = str(entry["action"])
        if action == "repeat":
            response = VoiceResponse()
            voice = Voice(request, language)
            gather = voice.gather(speech=True)
            voice.say(gather, state.last_said)
            voice.say(gather, _menu_prompt(language, {d: e for d, e in state.menu.items() if d != "0"}))
            response.append(gather)
            await calls.save(call_sid, state)
            return twiml(response)
        if action == "ask":
            response = ask_question(request, state)
            await calls.save(call_sid, state)
            return twiml(response)
        if action == "sms":
            return await _send_sms(request, calls, call_sid, state)
        event = Event(
            action=ActionName(action),
            value=entry.get("value"),
            language=language,
            contact=state.caller,
            origin=origin,
        )
    elif speech:
        event = Event(text=speech, language=language, contact=state.caller, origin=origin)
    else:
        return await _reprompt(request, calls, call_sid, state, say(language, "I did not hear anything."))
    state.failures = 0
    try:
        async with db.transaction(services.sessions) as session:
            reply = await services.conversation.handle(session, PersonRef(Channel.VOICE, call_sid), event)
    except DomainError:  # a stale button, an unknown value: say so, offer a person
        return await _reprompt(request, calls, call_sid, state, say(language, "That key does nothing here."))
    if reply.kind is ReplyKind.HANDOFF and reply.ticket is not None:
        response = await hand_over_call(request, state, reply)
    else:
        response = speak_reply(request, state, reply)
    await calls.save(call_sid, state)
    return twiml(response)


@router.post("/dial")
async def dial_result(request: Request, form: TwilioForm) -> Response:
    """After the transfer: done, or nobody answered and the ticket waits as a callback."""
    calls = CallStore(get_services(request).redis)
    call_sid = form.get("CallSid", "")
    state = await calls.load(call_sid) or CallState(caller=form.get("From", ""))
    response = VoiceResponse()
    if form.get("DialCallStatus") in ("completed", "answered"):
        state.outcome = "transferred"
        response.hangup()
    else:
        state.outcome = "callback"
        voice = Voice(request, state.language or "pl")
        voice.say(
            response,
            say(
                voice.language,
                "Nobody could answer just now. Your request is saved and a consultant will call you back at this number. Goodbye.",
            ),
        )
        response.hangup()
    await calls.save(call_sid, state)
    return twiml(response)


@router.post("/status")
async def call_status(request: Request, form: TwilioForm) -> Response:
    """Twilio's status callback: the call's outcome and duration, kept for the supervisors' dashboard."""
    services = get_services(request)
    call_sid = form.get("CallSid", "")
    state = await CallStore(services.redis).load(call_sid)
    outcome = CallOutcome.ABANDONED
    if state is not None and state.language is not None:
        outcome = CallOutcome(state.outcome)
    try:
        duration = int(form.get("CallDuration") or 0)
    except ValueError:
        duration = 0
    async with db.transaction(services.sessions) as session:
        await record_call(
            session,
            call_sid=call_sid,
            caller=masked(form.get("From", "")),
            language=state.language if state else None,
            outcome=outcome,
            status=form.get("CallStatus", "")[:20],
            duration_seconds=max(0, duration),
            ticket_number=state.ticket_number if state else None,
        )
    return twiml(VoiceResponse())


async def _reprompt(
    request: Request, calls: CallStore, call_sid: str, state: CallState, lead: str
) -> Response:
    """Silence or a wrong key: once more; after two, the way to a consultant."""
    state.failures += 1
    language = state.language or "pl"
    if state.failures > MAX_FAILURES:
        state.failures, state.entry = 0, None
        response = VoiceResponse()
        voice = Voice(request, language)
        gather = voice.gather(speech=False)
        voice.say(
            gather,
            say(language, "I could not understand. To reach a consultant, press 0, or call again later."),
        )
        response.append(gather)
        state.menu = {
            "0": {
                "action": ActionName.CONSULTANT.value,
                "value": None,
                "label": say(language, "a consultant"),
            }
        }
        await calls.save(call_sid, state)
        return twiml(response)
    voice = Voice(request, language)
    response = VoiceResponse()
    gather = voice.gather(speech=state.entry != "digits", entry=state.entry)
    voice.say(gather, lead)
    voice.say(
        gather,
        state.last_said
        or say(language, "Ask your question in a few words after the tone. For a consultant, press 0."),
    )
    response.append(gather)
    await calls.save(call_sid, state)
    return twiml(response)


async def _send_sms(request: Request, calls: CallStore, call_sid: str, state: CallState) -> Response:
    """The last answer, in full with its links, to the caller's phone — through the outbox (once)."""
    services = get_services(request)
    language = state.language or "pl"
    if state.sms_text and state.caller and not state.sms_sent:
        async with db.transaction(services.sessions) as session:
            enqueue(session, channel=Channel.SMS, recipient=state.caller, text=state.sms_text)
            services.feed.wake_after_commit(session)
        state.sms_sent = True
        lead = say(language, "I am sending the answer by SMS to the number you are calling from.")
    elif state.sms_sent:
        lead = say(language, "The SMS is on its way.")
    else:
        lead = say(language, "I have nothing to send by SMS yet.")
    response = VoiceResponse()
    voice = Voice(request, language)
    gather = voice.gather(speech=True)
    voice.say(gather, lead)
    voice.say(gather, _menu_prompt(language, {d: e for d, e in state.menu.items() if d in ("1", "2")}))
    voice.say(gather, say(language, "For a consultant, press 0."))
    response.append(gather)
    await calls.save(call_sid, state)
    return twiml(response)
