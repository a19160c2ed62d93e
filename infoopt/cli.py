"""The `infoopt` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core import db
from infoopt.core.logs import configure_logging, uvicorn_log_config
from infoopt.core.metrics import prepare_multiprocess
from infoopt.core.redis_store import create_redis
from infoopt.core.settings import (
    PROJECT_ROOT,
    InsecureConfiguration,
    Settings,
    check_production,
    get_settings,
)
from infoopt.staff.accounts import Role, StaffUser, UsernameTaken, WeakPassword, create_user
from knowledge_base import service as kb
from knowledge_base.events import announce_publish
from knowledge_base.files import ARTICLES_DIR, ArticleFileError
from knowledge_base.topics import catalogue
from tickets.offices import UnknownOffice, get_office

T = TypeVar("T")
WORKER_HEALTHCHECK_SECONDS = 60

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
    load_articles: Annotated[
        bool, typer.Option("--kb-sync/--no-kb-sync", help="Load changed article files before serving")
    ] = True,
) -> None:
    """Apply pending migrations, load changed article files, then serve the API, web pages and webhooks.

    Loading the files never overwrites an article an admin edited since its file was last loaded.
    """
    import uvicorn

    settings = _settings()
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "more than one worker needs INFOOPT_REDIS_URL: the in-process fallback is per process", err=True
        )
        raise typer.Exit(2)
    db.upgrade(settings.database_url)
    if load_articles:
        report = _run(_with_session(settings, lambda s: kb.sync_from_files(s, ARTICLES_DIR, actor="kb-sync")))
        typer.echo(
            f"knowledge base: {report.created} article(s) loaded from files, {report.unchanged} unchanged"
            + (f", {len(report.conflicts)} kept as edited" if report.conflicts else "")
        )
        for problem in report.problems:
            typer.echo(f"knowledge base: skipped {problem}", err=True)
    host = host or settings.host
    port = port or settings.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    typer.echo(
        f"INFO.OPT is starting on http://{shown}:{port}\n"
        f"  health   http://{shown}:{port}/healthz\n"
        f"  ready    http://{shown}:{port}/readyz\n"
        f"  API docs http://{shown}:{port}/docs\n"
        f"  metrics  http://{shown}:{port}/metrics\n"
        f"  web chat http://{shown}:{port}/chat\n"
        f"  editor   http://{shown}:{port}/admin/kb (infoopt users create --username NAME --role admin)"
    )
    if workers > 1:
        # Each worker counts in its own files there, and /metrics sums them (a scrape reaches one worker).
        prepare_multiprocess(settings.multiprocess_metrics_dir)
    sys.stdout.flush()
    uvicorn.run(
        "infoopt.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_level, as_json=settings.log_json),
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from INFOOPT_TRUSTED_PROXIES only
        # A new worker answers uvicorn's health ping only once it has imported the project, which on a
        # busy machine takes longer than uvicorn's 5 s: it would kill and restart workers endlessly.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


@app.command()
def worker(
    heartbeat: Annotated[
        Path | None, typer.Option(help="A file touched every 15 s while the worker is alive (healthchecks)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="INFOOPT_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus metrics at http://INFOOPT_HOST:PORT/metrics "
            "(deliveries, failures; guarded by INFOOPT_METRICS_TOKEN like the app's)",
        ),
    ] = None,
) -> None:
    """Deliver consultants' replies from the outbox and close long-resolved tickets, until stopped.

    Run as many as you like beside `infoopt serve` (set INFOOPT_OUTBOX_IN_PROCESS=false there): workers
    share the outbox safely, and none delivers a message another has taken.
    """
    settings = _settings()
    db.upgrade(settings.database_url)

    async def run() -> None:
        from infoopt.services import Services

        services = await Services.start(
            settings.model_copy(update={"outbox_in_process": False}), parses=False
        )
        typer.echo(f"outbox worker started for {', '.join(sorted(services.deliverers))}")
        sys.stdout.flush()

        async def beat() -> None:
            while heartbeat is not None:
                heartbeat.touch()
                await asyncio.sleep(15)

        metrics = None
        if metrics_port is not None:
            from infoopt.core.metrics import serve_worker_metrics

            token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            metrics = await serve_worker_metrics(
                settings.host, metrics_port, token, production=settings.is_production
            )
            typer.echo(f"worker metrics on http://{settings.host}:{metrics_port}/metrics")
        try:
            await asyncio.gather(
                services.outbox_worker().run(services.feed.outbox_wakeups),
                services.housekeeping(),
                services.broadcasts(),
                beat(),
            )
        finally:
            if metrics is not None:
                await metrics.cleanup()
            await services.close()

    with contextlib.suppress(KeyboardInterrupt):
        event_loop_runner()(run())


def event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's runner when it is installed (it comes with uvicorn[standard]): a worker spends most of its
    time in the event loop's network code, which uvloop does in C; asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


bot_app = typer.Typer(help="The Telegram bot.", no_args_is_help=True)
app.add_typer(bot_app, name="bot")


def _telegram_settings() -> Settings:
    settings = _settings()
    if settings.telegram.bot_token is None:
        typer.echo("set TELEGRAM_BOT_TOKEN first (from @BotFather)", err=True)
        raise typer.Exit(2)
    return settings


@bot_app.command("poll")
def bot_poll() -> None:
    """Run the bot with long polling, for development: no public address or webhook needed.

    Replies are delivered from this process (an outbox worker runs inside it).
    """
    settings = _telegram_settings()
    db.upgrade(settings.database_url)

    async def run() -> None:
        from bot.telegram.channel import poll
        from infoopt.services import Services

        services = await Services.start(settings.model_copy(update={"outbox_in_process": True}))
        assert services.telegram is not None
        me = await services.telegram.bot.get_me()
        typer.echo(f"polling as @{me.username}; write to the bot in Telegram (Ctrl+C stops)")
        sys.stdout.flush()
        try:
            await poll(services.telegram)
        finally:
            await services.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@bot_app.command("set-webhook")
def bot_set_webhook() -> None:
    """Register INFOOPT_PUBLIC_URL/telegram/webhook (with TELEGRAM_WEBHOOK_SECRET) and the command menu."""
    settings = _telegram_settings()
    if not settings.public_url or settings.telegram.webhook_secret is None:
        typer.echo("set INFOOPT_PUBLIC_URL (https) and TELEGRAM_WEBHOOK_SECRET first", err=True)
        raise typer.Exit(2)

    async def run() -> str:
        from bot.telegram.channel import build_bot, register_webhook

        bot = build_bot(settings)
        try:
            return await register_webhook(bot, settings)
        finally:
            await bot.session.close()

    typer.echo(f"Telegram now sends updates to {_run(run())}")


cases_app = typer.Typer(help="Case records from the case-management system.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")


@cases_app.command("import")
def cases_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .json list or a .csv file")],
) -> None:
    """Upsert case statuses from a file (the same rows as POST /api/v1/cases/import); bad rows are listed."""
    import json

    from cases.service import BatchUnreadable, import_cases, rows_from_csv, rows_from_json

    settings = _settings()
    db.upgrade(settings.database_url)
    text = file.read_text(encoding="utf-8")
    try:
        rows = rows_from_csv(text) if file.suffix.lower() == ".csv" else rows_from_json(json.loads(text))
        report = _run(
            _with_session(
                settings, lambda s: import_cases(s, rows, secret=settings.secret_key.get_secret_value())
            )
        )
    except (BatchUnreadable, ValueError) as error:
        typer.echo(f"not imported: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(
        f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, {report.failed} failed"
    )
    for problem in report.errors:
        typer.echo(f"  row {problem.row}, {problem.field}: {problem.message}", err=True)
    if report.errors:
        raise typer.Exit(1)


nlu_app = typer.Typer(help="The NLU engines: train them, measure them.", no_args_is_help=True)
app.add_typer(nlu_app, name="nlu")
kb_app = typer.Typer(
    help="The knowledge base: load the article files, write them back.", no_args_is_help=True
)
users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(users_app, name="users")


def _run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on a migrated database."""
    await db.upgrade_async(settings.database_url)
    engine = db.create_engine(settings.database_url)
    try:
        async with db.transaction(db.session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _announce_all(settings: Settings, topic_ids: list[str]) -> None:
    """Tell running workers that these topics changed (a no-op without Redis: no other process to tell)."""
    if not settings.redis_url:
        return
    redis = create_redis(settings.redis_url)
    try:
        for topic_id in topic_ids:
            await announce_publish(redis, topic_id)
    finally:
        await redis.aclose()


@kb_app.command("sync")
def kb_sync(
    directory: Annotated[Path, typer.Option("--dir", help="Article files to load")] = ARTICLES_DIR,
    actor: Annotated[str, typer.Option(help="Recorded as the author in the audit trail")] = "kb-sync",
    force: Annotated[
        bool, typer.Option(help="Overwrite articles edited in the editor since the last sync")
    ] = False,
) -> None:
    """Load the article files: files changed since the last sync become published revisions.

    Articles an admin edited since then are reported and left alone unless --force is given.
    """
    settings = _settings()
    if not directory.is_dir():
        typer.echo(f"no article directory at {directory}", err=True)
        raise typer.Exit(2)
    try:
        report = _run(
            _with_session(settings, lambda s: kb.sync_from_files(s, directory, actor=actor, force=force))
        )
    except ArticleFileError as error:
        typer.echo(f"not loaded: {error}", err=True)
        raise typer.Exit(1) from error
    _run(_announce_all(settings, list(catalogue().topic_ids)))
    typer.echo(f"published {report.created} new revision(s); {report.unchanged} article(s) unchanged")
    for conflict in report.conflicts:
        typer.echo(f"kept the editor's version of {conflict} (use --force to overwrite)", err=True)
    for problem in report.problems:
        typer.echo(f"skipped {problem}", err=True)
    if report.problems:
        raise typer.Exit(1)


@kb_app.command("export")
def kb_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the article files")] = ARTICLES_DIR,
) -> None:
    """Write every published revision back to article files (to review admin edits as a diff)."""
    settings = _settings()
    count = _run(_with_session(settings, lambda s: kb.export_to_files(s, directory)))
    typer.echo(f"wrote {count} article file(s) to {directory}")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Sign-in name")],
    role: Annotated[Role, typer.Option(help="admin, supervisor or consultant")],
    office: Annotated[str | None, typer.Option(help="PID point code, e.g. KRK-RONDO")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a staff account; the password is asked for (or read from stdin), never taken as an argument."""
    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def create(session: AsyncSession) -> StaffUser:
        if office is not None:
            await get_office(session, office)
        return await create_user(session, username=username, password=password, role=role, office_code=office)

    try:
        user = _run(_with_session(settings, create))
    except (UsernameTaken, WeakPassword, UnknownOffice) as error:
        typer.echo(f"not created: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(
        f"created {user.role} {user.username}" + (f" at {user.office_code}" if user.office_code else "")
    )


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="The question, as a person would write it")],
    language: Annotated[str | None, typer.Option(help="pl, uk, ru or en (default: detect)")] = None,
    session_id: Annotated[str | None, typer.Option(help="Keep context between calls")] = None,
) -> None:
    """Ask the bot one question and print the same JSON as POST /api/v1/ask."""
    from bot.api import AskRequest, ask_response, new_session_id
    from bot.flows import Event
    from bot.state import PersonRef
    from infoopt.core.languages import Channel
    from infoopt.services import Services

    settings = _settings()
    try:
        question = AskRequest(text=text, language=language, session_id=session_id)
    except ValueError as error:
        typer.echo(f"not asked: {error}", err=True)
        raise typer.Exit(2) from error

    async def run() -> str:
        await db.upgrade_async(settings.database_url)
        services = await Services.start(settings)
        try:
            person = PersonRef(Channel.WEB, question.session_id or new_session_id())
            async with db.transaction(services.sessions) as session:
                event = Event(text=question.text, language=question.language)
                reply = await services.conversation.handle(session, person, event)
            return ask_response(reply, person.id).model_dump_json(indent=2)
        finally:
            await services.close()

    typer.echo(_run(run()))


class Engine(StrEnum):
    EMBEDDED = "embedded"
    RASA = "rasa"
    BOTH = "both"


@nlu_app.command("train")
def nlu_train(
    engine: Annotated[Engine, typer.Option(help="Which engine to train")] = Engine.BOTH,
) -> None:
    """Train the embedded engine and the language detector, and the Rasa model, from nlu_data/."""
    from bot.nlu.embedded import MODEL_VERSION, train
    from bot.nlu.language import LanguageDetector
    from bot.nlu.training_data import fingerprint, load_examples

    settings = _settings()
    data = settings.nlu_data_dir / "data"
    if engine in (Engine.EMBEDDED, Engine.BOTH):
        examples = load_examples([data])
        intents = len({example.intent for example in examples})
        typer.echo(f"[1/3] read {len(examples)} examples of {intents} intents from {data}")
        model = train(examples, fingerprint([data], MODEL_VERSION))
        typer.echo(f"[2/3] embedded engine trained in {model.seconds:.1f} s")
        cache = settings.data_dir / "nlu"
        cache.mkdir(parents=True, exist_ok=True)
        from bot.nlu.training_data import cached_model

        cached_model(cache, "embedded", model.data_fingerprint, lambda: model)
        started = time.perf_counter()
        LanguageDetector.from_files(data, cache_dir=cache)
        typer.echo(
            f"[3/3] language detector ready in {time.perf_counter() - started:.1f} s; saved under {cache}"
        )
    if engine in (Engine.RASA, Engine.BOTH):
        typer.echo("rasa: training the Rasa server's model (minutes on two cores; progress follows)")
        script = PROJECT_ROOT / "scripts" / "rasa.sh"
        result = subprocess.run(["bash", str(script), "train"], check=False)  # noqa: S603, S607
        if result.returncode != 0:
            typer.echo("rasa: training failed", err=True)
            raise typer.Exit(result.returncode)


@nlu_app.command("eval")
def nlu_eval(
    file: Annotated[
        Path, typer.Argument(help="Test data in Rasa's NLU format (nlu_data/tests/test_nlu.yml)")
    ],
    engine: Annotated[Engine, typer.Option(help="embedded or rasa")] = Engine.EMBEDDED,
    rasa_url: Annotated[str | None, typer.Option(help="The Rasa server (default INFOOPT_RASA_URL)")] = None,
    min_accuracy: Annotated[float, typer.Option(help="Fail below this overall accuracy")] = 0.0,
    min_language_accuracy: Annotated[float, typer.Option(help="Fail below this in any language")] = 0.0,
    min_oos_rejection: Annotated[float, typer.Option(help="Fail below this out-of-scope rejection")] = 0.0,
    per_intent: Annotated[bool, typer.Option(help="Print the per-intent table")] = True,
    channel: Annotated[
        str,
        typer.Option(help="Count what a person gets under this channel's decision policy (web, voice, ...)"),
    ] = "web",
    min_answered_right: Annotated[
        float, typer.Option(help="Fail if fewer are answered right outright in any language")
    ] = 0.0,
    max_answered_wrong: Annotated[
        float, typer.Option(help="Fail if more are answered wrong in any language")
    ] = 1.0,
) -> None:
    """Accuracy, per-intent precision/recall/F1, the most confused pairs and the figures per language,
    and what a person gets per language: answered right, asked back, answered wrong, not understood."""
    from bot.conversation import DecisionPolicy
    from bot.nlu.engine import NluEngine
    from bot.nlu.evaluation import evaluate, outcome_shortfalls, read_test_file, render
    from bot.nlu.rasa import RasaEngine
    from infoopt.services import build_embedded

    settings = _settings()
    if not file.is_file():
        typer.echo(f"no test file at {file}", err=True)
        raise typer.Exit(2)
    examples = read_test_file(file)
    chosen: NluEngine
    if engine is Engine.RASA:
        url = rasa_url or settings.rasa_url
        if not url:
            typer.echo("--engine rasa needs --rasa-url or INFOOPT_RASA_URL", err=True)
            raise typer.Exit(2)
        chosen = RasaEngine(url, timeout=30)
    elif engine is Engine.EMBEDDED:
        chosen = build_embedded(settings)
    else:
        typer.echo("evaluate one engine at a time: --engine embedded or --engine rasa", err=True)
        raise typer.Exit(2)

    async def run() -> str:
        try:
            report = await evaluate(
                chosen.name,
                chosen.parse,
                examples,
                policy=DecisionPolicy().for_engine(chosen.name).for_channel(channel),
            )
        finally:
            await chosen.close()
        failures = outcome_shortfalls(report, min_answered_right, max_answered_wrong)
        if report.accuracy < min_accuracy:
            failures.append(f"accuracy {report.accuracy:.3f} < {min_accuracy}")
        for language in report.per_language:
            if report.language_accuracy(language) < min_language_accuracy:
                failures.append(
                    f"{language} accuracy {report.language_accuracy(language):.3f} < {min_language_accuracy}"
                )
        if report.out_of_scope_rejection < min_oos_rejection:
            failures.append(
                f"out-of-scope rejection {report.out_of_scope_rejection:.3f} < {min_oos_rejection}"
            )
        text = render(report, per_intent=per_intent)
        if failures:
            raise EvaluationBelowThreshold(text + "\n\nBELOW THRESHOLD: " + "; ".join(failures))
        return text

    try:
        typer.echo(_run(run()))
    except EvaluationBelowThreshold as error:
        typer.echo(str(error))
        raise typer.Exit(1) from error


class EvaluationBelowThreshold(RuntimeError):
    """An evaluation came out under a required threshold."""


if __name__ == "__main__":
    app()
