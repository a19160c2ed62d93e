"""Settings from the environment and `.env`, named exactly as DESIGN.md "Contracts" lists them."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"

# Values that mean "nobody set this yet"; production refuses them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "changethis", "secret", "password", "dev", "test", "xxx"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _env_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore")


class TelegramSettings(BaseSettings):
    """The Telegram bot: `TELEGRAM_BOT_TOKEN`, `TELEGRAM_WEBHOOK_SECRET`, `TELEGRAM_API_BASE`, and the
    sending limits `TELEGRAM_MESSAGES_PER_SECOND`, `TELEGRAM_MESSAGES_PER_CHAT_PER_SECOND`, and
    `TELEGRAM_REPLY_IN_WEBHOOK`; `TELEGRAM_WEBHOOK_MAX_CONNECTIONS` for `infoopt bot set-webhook`."""

    model_config = _env_config("TELEGRAM_")

    bot_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    # Another Bot API server: Telegram's self-hosted telegram-bot-api, or a local fake in tests.
    api_base: str | None = None
    # Telegram's limits for one bot, kept by all outbox workers together (a shared reckoning in Redis).
    messages_per_second: float = Field(default=30.0, gt=0)
    messages_per_chat_per_second: float = Field(default=1.0, gt=0)
    # A one-message reply to an update goes back in the webhook's response when the limits allow it now
    # (no request, no outbox job; Telegram does not confirm it). False: every reply through the outbox.
    reply_in_webhook: bool = True
    # How many webhook requests Telegram may hold open at once (setWebhook's max_connections, 1-100;
    # Telegram's own default is 40). Updates beyond it wait on Telegram's side, in order, and nothing is
    # lost; more requests than there are pooled database connections in all app processes only queue
    # here and make the pool open and close extra connections. About app processes × INFOOPT_DB_POOL_SIZE.
    webhook_max_connections: int = Field(default=40, ge=1, le=100)


class TwilioSettings(BaseSettings):
    """The voice line: `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM_NUMBER`."""

    model_config = _env_config("TWILIO_")

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = None
    # Another Twilio REST server (a local fake in tests), as TELEGRAM_API_BASE is for Telegram.
    api_base: str | None = None
    # The voice that speaks each language (Polly has no Ukrainian voice: a Google one does).
    voice_pl: str = "Polly.Ewa"
    voice_uk: str = "Google.uk-UA-Standard-A"
    voice_ru: str = "Polly.Tatyana"
    voice_en: str = "Polly.Joanna"

    def voice(self, language: str) -> str:
        return str(getattr(self, f"voice_{language}", self.voice_pl))


class Settings(BaseSettings):
    """Everything the service reads from its environment, validated once at start."""

    model_config = _env_config("INFOOPT_")

    env: Environment = Environment.DEVELOPMENT
    # Where the SQLite default and trained models live.
    data_dir: Path = DEFAULT_DATA_DIR
    # The Rasa project both NLU engines train from.
    nlu_data_dir: Path = PROJECT_ROOT / "nlu_data"
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'infoopt.sqlite3'}"
    redis_url: str | None = None
    rasa_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    # Signs staff session cookies and CSRF tokens.
    secret_key: SecretStr = SecretStr("dev-only-not-secret")
    log_level: str = "INFO"
    log_json: bool = True
    # Browsers that may call the API from another origin (comma separated).
    cors_origins: Annotated[list[str], NoDecode] = []
    nlu_timeout_seconds: float = Field(default=2.0, gt=0)
    # After this many Rasa failures in a row each worker stops asking Rasa for this many seconds (the embedded
    # engine answers at once), then tries it again: a hung Rasa does not cost every question the timeout.
    nlu_breaker_failures: int = Field(default=3, ge=1)
    nlu_breaker_seconds: float = Field(default=15.0, gt=0)
    # PostgreSQL connections per process: kept, opened beyond them under load, and the wait for one when
    # all are busy (then the request answers 503 with Retry-After). Mind PostgreSQL's max_connections:
    # (size + overflow) × processes (app workers, outbox workers) must stay below it.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Days every answer on a topic starts with "changed on …" after an admin marked a change of it.
    change_notice_days: int = Field(default=30, ge=0, le=365)
    # Questions a minute per conversation: plenty for a person typing.
    ask_limit_per_minute: int = Field(default=30, ge=1)
    # ...and per client address: generous, since a PID point's public computer or a mobile carrier's
    # NAT carries many people behind one address.
    ask_limit_per_address_per_minute: int = Field(default=600, ge=1)
    # Answer votes a minute per client address.
    feedback_limit_per_minute: int = Field(default=60, ge=1)
    # Public reads a minute per client address (a published answer, a conversation's new messages, the
    # readiness check): the web chat polls every 5 s, and many people may share one address.
    read_limit_per_address_per_minute: int = Field(default=1200, ge=1)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges, comma separated);
    # empty: the connecting address is the client's.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Bearer token for /metrics; in production /metrics answers 404 without one.
    metrics_token: SecretStr | None = None
    # Where the workers of `infoopt serve --workers N` (N > 1) keep their metrics for /metrics to sum;
    # emptied of metric files at every start. Unset: <data_dir>/metrics. One `infoopt serve` per directory.
    metrics_dir: Path | None = None
    # Two people publish a knowledge-base answer: its author and another admin who approves it.
    # A single-admin installation switches this off; the editor then says nobody else reviewed it.
    kb_second_reviewer: bool = True
    # Deliver the outbox (consultants' replies) from inside `infoopt serve`. Unset: yes when Redis is
    # unset (one process does everything); with Redis, `infoopt worker` services do it.
    outbox_in_process: bool | None = None
    # The case-management system's bearer token for POST /api/v1/cases/import; unset: no import over HTTP.
    cases_token: SecretStr | None = None
    # Conversations (transcripts) silent this long are deleted; the bot's /privacy says so.
    transcript_retention_days: int = Field(default=365, ge=1)
    # Tickets closed this long ago lose their texts and contact (numbers, times, ratings stay).
    ticket_personal_data_days: int = Field(default=365, ge=1)
    # Delivered outbox jobs (a recipient and a text) are deleted after this long; undelivered ones
    # after ticket_personal_data_days.
    outbox_retention_days: int = Field(default=30, ge=1)
    # What the bot could not answer (the admins' backlog) is deleted after this long.
    failure_retention_days: int = Field(default=180, ge=1)
    # Case status: failed lookups allowed a day per conversation, per client address or phone number,
    # and per case number; past any of them every lookup is refused and the person sent to a consultant.
    case_attempts_per_conversation: int = Field(default=5, ge=1)
    case_attempts_per_origin: int = Field(default=10, ge=1)
    case_attempts_per_case: int = Field(default=5, ge=1)
    # An alarm (log and metric) when this many different case numbers fail within 10 minutes.
    case_burst_numbers: int = Field(default=20, ge=2)
    # Case records are deleted this long after their case closes; the lookups' audit after this long.
    case_retention_days: int = Field(default=90, ge=1)
    case_lookup_retention_days: int = Field(default=365, ge=1)
    # Who takes reports of accessibility problems, as the accessibility statement names them: a person or
    # unit, an e-mail address and a phone number in one line. Unset: the statement says it is still to be
    # set and sends people to the INFO.OPT line meanwhile.
    accessibility_contact: str | None = None

    @property
    def multiprocess_metrics_dir(self) -> Path:
        return self.metrics_dir or self.data_dir / "metrics"

    @property
    def runs_outbox_in_process(self) -> bool:
        return self.outbox_in_process if self.outbox_in_process is not None else not self.redis_url

    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("redis_url", "rasa_url", "public_url", "accessibility_contact", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    def production_problems(self) -> list[str]:
        """What stops this configuration from running in production, one sentence each."""
        problems: list[str] = []

        def placeholder(secret: SecretStr | None) -> bool:
            if secret is None:
                return True
            value = secret.get_secret_value().strip().lower()
            return value in PLACEHOLDER_SECRETS or value.startswith(("dev-", "change"))

        if placeholder(self.secret_key) or len(self.secret_key.get_secret_value()) < 32:
            problems.append("INFOOPT_SECRET_KEY is missing, a placeholder or shorter than 32 characters")
        if self.telegram.bot_token is not None and placeholder(self.telegram.webhook_secret):
            problems.append(
                "TELEGRAM_WEBHOOK_SECRET is missing or a placeholder while TELEGRAM_BOT_TOKEN is set"
            )
        if self.telegram.bot_token is not None and placeholder(self.telegram.bot_token):
            problems.append("TELEGRAM_BOT_TOKEN is a placeholder")
        if self.twilio.account_sid and placeholder(self.twilio.auth_token):
            problems.append("TWILIO_AUTH_TOKEN is missing or a placeholder while TWILIO_ACCOUNT_SID is set")
        if self.twilio.account_sid and not self.public_url:
            problems.append("INFOOPT_PUBLIC_URL is missing; Twilio signatures are computed for it")
        if self.database_url.startswith("sqlite"):
            problems.append("INFOOPT_DATABASE_URL points at SQLite; production needs PostgreSQL")
        if not self.redis_url:
            problems.append("INFOOPT_REDIS_URL is missing; the in-process fallback serves one process only")
        return problems


class InsecureConfiguration(RuntimeError):
    """Production was asked to start with a configuration that is not safe to run."""


def check_production(settings: Settings) -> None:
    """Refuse to go on in production mode while anything in `production_problems` remains."""
    if not settings.is_production:
        return
    problems = settings.production_problems()
    if problems:
        raise InsecureConfiguration("refusing to start in production: " + "; ".join(problems) + ".")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
