"""The long-lived objects of one process, built once at start and closed at stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts import announce_changes
from bot.conversation import Conversation
from bot.delivery import WebDeliverer, resolved_notice
from bot.nlu.embedded import EmbeddedEngine
from bot.nlu.engine import FallbackEngine, NluEngine, NluUnavailable
from bot.nlu.language import LanguageDetector
from bot.nlu.rasa import RasaEngine
from bot.state import StateStore
from bot.suggestions import KnowledgeSuggester
from bot.telegram.channel import TelegramChannel, build_bot
from bot.telegram.delivery import TelegramDeliverer
from bot.telegram.files import TelegramFiles
from bot.voice.sms import SmsDeliverer
from cases.lookup import CaseDesk, CaseLimits, purge_cases
from infoopt.core import db
from infoopt.core.clock import utcnow
from infoopt.core.languages import Channel
from infoopt.core.loops import stop_if_cancelled
from infoopt.core.pacing import Limits, SharedPace
from infoopt.core.redis_store import create_redis
from infoopt.core.settings import Settings
from knowledge_base import service as kb
from knowledge_base.backlog import purge_failures
from knowledge_base.cache import PublishedCache
from knowledge_base.events import listen_for_publishes
from tickets.conversations import purge_transcripts, scrub_closed_tickets
from tickets.live import TicketFeed
from tickets.offices import polish_public_holidays
from tickets.outbox import Deliverer, OutboxWorker, SendLog, purge_jobs
from tickets.routes import FileSource
from tickets.service import PersonNotice, close_resolved
from tickets.subscriptions import followers, purge_ended

log = logging.getLogger(__name__)
ENDED_SUBSCRIPTION_DAYS = 30  # a blocked person's subscriptions are kept this long (in case they return)


class NluNotReady:
    """Stands in while the embedded model cannot be trained, so /readyz can say why."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def parse(self, text: str) -> object:
        raise NluUnavailable(self.reason)

    async def check(self) -> str:
        raise NluUnavailable(self.reason)

    async def close(self) -> None:
        return None


def build_embedded(settings: Settings) -> NluEngine:
    """Train (or load the cached) embedded engine; a stand-in naming the problem if it cannot."""
    try:
        return EmbeddedEngine.from_files(
            [settings.nlu_data_dir / "data"], cache_dir=settings.data_dir / "nlu"
        )
    except (OSError, ValueError) as error:
        log.error("nlu.embedded_unavailable", extra={"error": str(error)})
        return NluNotReady(f"embedded engine not trained: {error}")  # type: ignore[return-value]


def warm_calendars() -> None:
    """Build this year's and next year's public holidays now: the first hand-over would otherwise pay
    for importing and computing the calendar in the middle of a person's turn."""
    year = utcnow().year
    for each in (year, year + 1):
        polish_public_holidays(each)


def case_desk(settings: Settings) -> CaseDesk:
    """Case lookups under the service's secret key and the configured attempt limits."""
    return CaseDesk(
        secret=settings.secret_key.get_secret_value(),
        limits=CaseLimits(
            per_conversation=settings.case_attempts_per_conversation,
            per_origin=settings.case_attempts_per_origin,
            per_case=settings.case_attempts_per_case,
            burst_cases=settings.case_burst_numbers,
        ),
    )


def build_detector(settings: Settings) -> LanguageDetector:
    """The language detector trained from nlu_data/, or its rules alone when there is no data."""
    try:
        return LanguageDetector.from_files(
            settings.nlu_data_dir / "data", cache_dir=settings.data_dir / "nlu"
        )
    except (OSError, ValueError) as error:
        log.error("nlu.language_detector_untrained", extra={"error": str(error)})
        return LanguageDetector(None)


def build_nlu(settings: Settings, embedded: NluEngine) -> NluEngine:
    """Rasa with the embedded engine behind it when INFOOPT_RASA_URL is set; else the embedded engine."""
    if not settings.rasa_url:
        return embedded
    rasa = RasaEngine(settings.rasa_url, timeout=settings.nlu_timeout_seconds)
    return FallbackEngine(
        rasa, embedded, failures=settings.nlu_breaker_failures, cool_off=settings.nlu_breaker_seconds
    )


@dataclass
class Services:
    """What request handlers, bot handlers and workers share within one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    nlu: NluEngine
    kb_cache: PublishedCache
    conversation: Conversation
    feed: TicketFeed
    # Each channel's way of delivering the outbox; Telegram and SMS add theirs when configured.
    deliverers: dict[Channel, Deliverer]
    suggest: KnowledgeSuggester
    telegram: TelegramChannel | None = None  # when TELEGRAM_BOT_TOKEN is set
    # Where consultants fetch the files people sent, per channel.
    files: dict[Channel, FileSource] = field(default_factory=dict)
    resolved_notice: Callable[[str, str], PersonNotice] = resolved_notice
    # Who follows a topic, by language (tickets' subscriptions), for the editor's article page.
    followers: Callable[[AsyncSession, str], Awaitable[dict[str, int]]] = followers
    background: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    async def start(cls, settings: Settings, *, parses: bool = True) -> Services:
        """Connect to the database and Redis and load the NLU engines. `parses=False` (an outbox worker,
        which never reads what people write) loads no NLU model and fills no article cache."""
        engine = db.create_engine(
            settings.database_url,
            pool=db.PoolSize(
                settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_seconds
            ),
        )
        sessions = db.session_factory(engine)
        if parses:
            nlu = build_nlu(settings, await asyncio.to_thread(build_embedded, settings))
            detector = await asyncio.to_thread(build_detector, settings)
            await asyncio.to_thread(warm_calendars)
        else:
            nlu = NluNotReady("this process does not parse messages (an outbox worker)")  # type: ignore[assignment]
            detector = LanguageDetector(None)

        redis = create_redis(settings.redis_url)
        # Through `services` (built below), not a copy of its sessions: tests swap in a rolled-back
        # transaction.
        kb_cache = PublishedCache(
            lambda topic_id, language: services.published_now(topic_id, language),
            load_in=kb.get_published,
            load_all=lambda: services.all_published(),
        )
        feed = TicketFeed(redis)
        services = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=redis,
            nlu=nlu,
            kb_cache=kb_cache,
            conversation=Conversation(
                nlu=nlu,
                detector=detector,
                articles=kb_cache.get,
                states=StateStore(redis),
                feed=feed,
                cases=case_desk(settings),
                change_notice=timedelta(days=settings.change_notice_days),
            ),
            feed=feed,
            deliverers={Channel.WEB: WebDeliverer()},
            suggest=KnowledgeSuggester(nlu, kb_cache.get),
        )
        if parses:
            # Subscribed first: subscribing empties the cache (a publish may have been missed), so filling
            # it before would leave every turn loading articles on a second connection of its own.
            await services.listen_for_publishes()
            await services.load_articles()
        if settings.telegram.bot_token is not None:
            bot = build_bot(settings)
            limits = Limits(
                per_second=settings.telegram.messages_per_second,
                per_chat_per_second=settings.telegram.messages_per_chat_per_second,
            )
            # One reckoning per bot, shared by every process that sends for it (replies in the webhook's
            # response included).
            pace = SharedPace(redis, f"telegram:{bot.id}", limits)
            services.telegram = TelegramChannel(
                bot=bot,
                conversation=services.conversation,
                sessions=lambda: services.sessions,
                redis=redis,
                feed=feed,
                settings=settings,
                pace=pace,
            )
            services.deliverers[Channel.TELEGRAM] = TelegramDeliverer(bot, pace, SendLog(redis))
            services.files[Channel.TELEGRAM] = TelegramFiles(bot)
        if settings.twilio.account_sid and settings.twilio.auth_token:
            services.deliverers[Channel.SMS] = SmsDeliverer(settings)
        if settings.runs_outbox_in_process:
            services.spawn(services.outbox_worker().run(feed.outbox_wakeups))
            services.spawn(services.housekeeping())
            services.spawn(services.broadcasts())
        return services

    async def all_published(self) -> list[kb.PublishedArticle]:
        """Every served revision, read on a session of its own."""
        async with self.sessions() as session:
            return await kb.all_published(session)

    async def load_articles(self) -> None:
        """Every published article in memory before the first question (see PublishedCache)."""
        try:
            self.kb_cache.fill(await self.all_published())
        except Exception as error:  # a database not migrated yet: articles load as they are asked for
            log.warning("kb_cache.preload_failed", extra={"error": type(error).__name__})

    async def listen_for_publishes(self) -> None:
        """Keep the article cache in step with publishes in any process, subscribed before returning."""
        listening = asyncio.Event()
        self.spawn(listen_for_publishes(self.redis, self.kb_cache, listening))
        try:
            await asyncio.wait_for(listening.wait(), timeout=5)
        except TimeoutError:
            log.warning("kb.listener_slow_to_subscribe")

    async def tidy(self) -> tuple[int, int, int]:
        """Close tickets resolved longer than the reopening window ago, delete conversations silent
        longer than the retention period (what /privacy promises), remove the texts of tickets closed
        longer than theirs, and delete case records closed longer than theirs; how many tickets closed,
        conversations deleted and case records deleted."""
        settings, now = self.settings, utcnow()
        async with db.transaction(self.sessions) as session:
            closed = await close_resolved(session)
            silent_since = now - timedelta(days=settings.transcript_retention_days)
            purged = await purge_transcripts(session, silent_since=silent_since)
            await scrub_closed_tickets(
                session, closed_before=now - timedelta(days=settings.ticket_personal_data_days)
            )
            await purge_jobs(
                session,
                sent_before=now - timedelta(days=settings.outbox_retention_days),
                any_before=now - timedelta(days=settings.ticket_personal_data_days),
            )
            await purge_failures(session, before=now - timedelta(days=settings.failure_retention_days))
            await purge_ended(session, ended_before=now - timedelta(days=ENDED_SUBSCRIPTION_DAYS))
            cases = await purge_cases(
                session,
                closed_before=(now - timedelta(days=settings.case_retention_days)).date(),
                lookups_before=now - timedelta(days=settings.case_lookup_retention_days),
            )
        return closed, purged, cases

    async def housekeeping(self, every_seconds: float = 600.0) -> None:
        """`tidy` every few minutes, for the life of the process."""
        while True:
            stop_if_cancelled()
            try:
                closed, purged, cases = await self.tidy()
                if closed or purged or cases:
                    log.info(
                        "housekeeping.done",
                        extra={
                            "tickets_closed": closed,
                            "conversations_deleted": purged,
                            "cases_deleted": cases,
                        },
                    )
            except Exception:  # the database away for a moment: try again next round
                log.exception("housekeeping.failed")
            await asyncio.sleep(every_seconds)

    async def published_now(self, topic_id: str, language: str) -> kb.PublishedArticle | None:
        """The served article read from the database, not the cache: what the cache loads, and what an
        outbox worker reads (it keeps no cache in step with publishes)."""
        async with self.sessions() as session:
            return await kb.get_published(session, topic_id, language)

    async def broadcasts(self) -> None:
        """Tell subscribers about marked changes as they appear, for the life of the process."""
        await announce_changes(lambda: self.sessions, self.published_now, self.feed.wake_outbox)

    def outbox_worker(self) -> OutboxWorker:
        """A worker draining the outbox over this process's database and channels."""
        worker = OutboxWorker(lambda: self.sessions, self.deliverers, settled=self.feed.job_settled)
        self.feed.local_wakeups.append(worker.wake)
        return worker

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run background work for the life of the process."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        """Stop background work and release every connection."""
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.telegram is not None:
            await self.telegram.close()
        sms = self.deliverers.get(Channel.SMS)
        if isinstance(sms, SmsDeliverer):
            await sms.close()
        await self.nlu.close()
        await self.redis.aclose()
        await self.engine.dispose()
