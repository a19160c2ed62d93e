"""The `infoopt` command line."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from infoopt import db
from infoopt.logs import configure_logging, uvicorn_log_config
from infoopt.settings import InsecureConfiguration, Settings, check_production, get_settings

app = typer.Typer(
    help="INFO.OPT infoline: bot, voice line and consultants' ticket desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("infoopt.cli")


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    try:
        check_production(settings)
    except InsecureConfiguration as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    return settings


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply pending database migrations."""
    settings = _settings()
    db.upgrade(settings.database_url, revision)
    typer.echo(
        f"database at {db.async_database_url(settings.database_url).render_as_string()} is at {revision}"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (INFOOPT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (INFOOPT_PORT)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (needs INFOOPT_REDIS_URL above 1)")
    ] = 1,
) -> None:
    """Apply pending migrations, then serve the API, web pages and webhooks."""
    import uvicorn

    settings = _settings()
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "more than one worker needs INFOOPT_REDIS_URL: the in-process fallback is per process", err=True
        )
        raise typer.Exit(2)
    db.upgrade(settings.database_url)
    host = host or settings.host
    port = port or settings.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    typer.echo(
        f"INFO.OPT is starting on http://{shown}:{port}\n"
        f"  health   http://{shown}:{port}/healthz\n"
        f"  ready    http://{shown}:{port}/readyz\n"
        f"  API docs http://{shown}:{port}/docs\n"
        f"  metrics  http://{shown}:{port}/metrics"
    )
    sys.stdout.flush()
    uvicorn.run(
        "infoopt.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_level, as_json=settings.log_json),
        proxy_headers=True,
    )


if __name__ == "__main__":
    app()
