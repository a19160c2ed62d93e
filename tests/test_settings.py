"""Settings: plain database URLs get async drivers; production refuses unsafe configuration by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from infoopt.core.db import UnsupportedDatabase, async_database_url
from infoopt.core.settings import InsecureConfiguration, Settings, check_production

pytestmark = pytest.mark.usefixtures("clean_environment")

GOOD_SECRET = "k3y-" + "x" * 40


@pytest.mark.parametrize(
    ("plain", "driver"),
    [
        ("sqlite:///var/infoopt.sqlite3", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite"),
        ("postgresql://infoopt@db/infoopt", "postgresql+asyncpg"),
        ("postgres://infoopt:pw@db:5432/infoopt", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@h/d", "postgresql+asyncpg"),
    ],
)
def test_plain_database_urls_get_the_async_driver(plain: str, driver: str) -> None:
    assert async_database_url(plain).drivername == driver


def test_libpq_sslmode_is_translated_for_asyncpg() -> None:
    url = async_database_url("postgresql://u@h/d?sslmode=require")
    assert url.query == {"ssl": "require"}


def test_unknown_database_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(UnsupportedDatabase, match="postgresql://"):
        async_database_url("mysql://u@h/d")


def test_settings_read_the_contract_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFOOPT_DATABASE_URL", "postgresql://a@b/c")
    monkeypatch.setenv("INFOOPT_REDIS_URL", "redis://127.0.0.1:6390/1")
    monkeypatch.setenv("INFOOPT_RASA_URL", "http://rasa:5005")
    monkeypatch.setenv("INFOOPT_HOST", "0.0.0.0")
    monkeypatch.setenv("INFOOPT_PORT", "8080")
    monkeypatch.setenv("INFOOPT_PUBLIC_URL", "https://infoopt.example.org")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("TELEGRAM_API_BASE", "http://127.0.0.1:8081")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-token")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql://a@b/c"
    assert settings.redis_url == "redis://127.0.0.1:6390/1"
    assert settings.rasa_url == "http://rasa:5005"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.public_url == "https://infoopt.example.org"
    assert settings.telegram.webhook_secret is not None
    assert settings.telegram.webhook_secret.get_secret_value() == "hook-secret"
    assert settings.telegram.api_base == "http://127.0.0.1:8081"
    assert settings.twilio.auth_token is not None
    assert settings.twilio.auth_token.get_secret_value() == "twilio-token"


def test_settings_come_from_a_dot_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("INFOOPT_PORT=9001\nINFOOPT_REDIS_URL=\nTELEGRAM_API_BASE=http://fake:1\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.port == 9001
    assert settings.redis_url is None, "an empty value means: use the in-process fallback"
    assert settings.telegram.api_base == "http://fake:1"


def test_defaults_are_the_embedded_zero_setup_ones() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url is None
    assert settings.rasa_url is None


def test_development_starts_with_placeholder_secrets() -> None:
    check_production(Settings(_env_file=None))  # type: ignore[call-arg]


def test_production_refuses_a_placeholder_secret_and_names_it() -> None:
    settings = Settings(
        env="production",
        secret_key="changeme",
        database_url="postgresql://u@h/d",
        redis_url="redis://r:6379/0",
        _env_file=None,  # type: ignore[call-arg]
    )
    with pytest.raises(InsecureConfiguration, match="INFOOPT_SECRET_KEY"):
        check_production(settings)


def test_production_names_every_missing_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:real-looking-token")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC0123")
    settings = Settings(env="production", secret_key=GOOD_SECRET, _env_file=None)  # type: ignore[call-arg]
    problems = " ".join(settings.production_problems())
    for name in (
        "TELEGRAM_WEBHOOK_SECRET",
        "TWILIO_AUTH_TOKEN",
        "INFOOPT_PUBLIC_URL",
        "INFOOPT_DATABASE_URL",
        "INFOOPT_REDIS_URL",
    ):
        assert name in problems
    assert "INFOOPT_SECRET_KEY" not in problems


def test_production_starts_when_everything_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:real-looking-token")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "w" * 32)
    settings = Settings(
        env="production",
        secret_key=GOOD_SECRET,
        database_url="postgresql://u@h/d",
        redis_url="redis://r:6379/0",
        _env_file=None,  # type: ignore[call-arg]
    )
    check_production(settings)
