"""Voice calls as Twilio's status callbacks report them: how each ended, for the supervisors."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from tickets.models import CallOutcome, VoiceCall


async def record_call(
    session: AsyncSession,
    *,
    call_sid: str,
    caller: str,
    language: str | None,
    outcome: CallOutcome,
    status: str,
    duration_seconds: int,
    ticket_number: str | None,
) -> VoiceCall:
    """Keep (or update, for a repeated callback) one call's outcome."""
    call = (await session.exec(select(VoiceCall).where(VoiceCall.call_sid == call_sid))).first()
    if call is None:
        call = VoiceCall(call_sid=call_sid, caller=caller, outcome=outcome, status=status)
    call.language, call.outcome, call.status = language, outcome, status
    call.duration_seconds, call.ticket_number, call.ended_at = duration_seconds, ticket_number, utcnow()
    session.add(call)
    await session.flush()
    return call
