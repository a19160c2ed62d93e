"""SMS through Twilio's REST client (`twilio` library), as an outbox channel: full answers with their
links for callers. TWILIO_API_BASE points the client at another server (a local fake in tests)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from infoopt.core.languages import Channel
from infoopt.core.settings import Settings
from tickets.models import OutboxJob
from tickets.outbox import DeliveryFailed

# Twilio's error codes for a number that will never take our messages.
UNREACHABLE = {21610, 21614, 21211}


class SmsDeliverer:
    channel = Channel.SMS
    transactional = False

    def __init__(self, settings: Settings) -> None:
        assert settings.twilio.account_sid
        assert settings.twilio.auth_token
        self.sender = settings.twilio.from_number or ""
        self.client = Client(
            settings.twilio.account_sid,
            settings.twilio.auth_token.get_secret_value(),
            http_client=AsyncTwilioHttpClient(),
        )
        if settings.twilio.api_base:
            self.client.api.base_url = settings.twilio.api_base.rstrip("/")

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        try:
            await self.client.messages.create_async(to=job.recipient, from_=self.sender, body=job.text)
        except TwilioRestException as error:
            if error.status == 429 or error.status >= 500:
                raise DeliveryFailed(f"Twilio {error.status}: {error.msg}") from error
            raise DeliveryFailed(
                f"Twilio refused the SMS ({error.code}): {error.msg}",
                permanent=True,
                unreachable=error.code in UNREACHABLE,
            ) from error
        except OSError as error:
            raise DeliveryFailed(f"Twilio unreachable: {error}") from error

    async def close(self) -> None:
        http = self.client.http_client
        if isinstance(http, AsyncTwilioHttpClient):
            await http.close()
