"""docker-compose.yml for production: no engine runs here, so the file itself is checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REQUIRED = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")
ANY_VARIABLE = re.compile(r"\$\{([A-Z_]+)")


def test_the_five_parts_are_there() -> None:
    assert set(SERVICES) == {"app", "worker", "rasa", "postgres", "redis"}


def test_outbox_workers_deliver_and_the_app_leaves_it_to_them() -> None:
    worker, app = SERVICES["worker"], SERVICES["app"]
    assert worker["command"][:2] == ["infoopt", "worker"]
    assert worker["image"] == app["image"]
    assert app["environment"]["INFOOPT_OUTBOX_IN_PROCESS"] == "false"
    assert "INFOOPT_OUTBOX_IN_PROCESS" not in worker["environment"]
    shared = {key: value for key, value in app["environment"].items() if key != "INFOOPT_OUTBOX_IN_PROCESS"}
    assert worker["environment"] == shared, "the same database, Redis and secrets"
    assert worker["depends_on"] == {"app": {"condition": "service_healthy"}}, "the app migrates first"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_the_app_waits_for_healthy_dependencies() -> None:
    depends = SERVICES["app"]["depends_on"]
    assert {name: rule["condition"] for name, rule in depends.items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "rasa": "service_healthy",
    }


def test_the_app_migrates_then_serves_with_several_workers_in_production() -> None:
    app = SERVICES["app"]
    command = " ".join(app["command"])
    assert command.startswith("infoopt serve")
    assert "--workers" in command
    assert app["environment"]["INFOOPT_ENV"] == "production"
    assert app["environment"]["INFOOPT_REDIS_URL"] == "redis://redis:6379/0"
    assert app["environment"]["INFOOPT_RASA_URL"] == "http://rasa:5005"
    assert app["environment"]["INFOOPT_DATABASE_URL"].startswith("postgresql://infoopt:")
    assert app["environment"]["INFOOPT_DATABASE_URL"].endswith("@postgres:5432/infoopt")


def test_secrets_are_required_not_defaulted() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(REQUIRED.findall(text))
    assert {
        "POSTGRES_PASSWORD",
        "INFOOPT_SECRET_KEY",
        "INFOOPT_PUBLIC_URL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    } <= required


def test_rasa_is_the_official_image_trained_from_the_mounted_nlu_data() -> None:
    rasa = SERVICES["rasa"]
    assert rasa["image"] == "rasa/rasa:3.6.21-full"
    assert "./nlu_data:/app/nlu_data:ro" in rasa["volumes"]
    script = " ".join(rasa["command"])
    assert "rasa train nlu" in script
    assert script.index("rasa train nlu") < script.index("rasa run --enable-api")


def test_only_the_app_is_published_and_state_lives_in_volumes() -> None:
    assert [service for service, spec in SERVICES.items() if spec.get("ports")] == ["app"]
    assert SERVICES["app"]["ports"] == ["${INFOOPT_PORT:-8000}:8000"]
    named = set(COMPOSE["volumes"])
    for service, mount in [
        ("postgres", "/var/lib/postgresql/data"),
        ("redis", "/data"),
        ("rasa", "/app/models"),
    ]:
        sources = {
            volume.split(":")[0] for volume in SERVICES[service]["volumes"] if volume.split(":")[1] == mount
        }
        assert sources and sources <= named, f"{service} keeps {mount} in a named volume"


def test_env_example_lists_every_variable_compose_uses() -> None:
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set(ANY_VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    assert used <= example, used - example


def test_the_app_image_is_built_from_the_repository() -> None:
    assert SERVICES["app"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("bot", "tickets", "knowledge_base", "cases", "infoopt", "nlu_data"):
        assert f"COPY {folder} {folder}" in dockerfile
