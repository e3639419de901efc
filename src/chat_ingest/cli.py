"""The ``chat-ingest`` command line. Every command reads the same settings as the service."""

import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.config import ConfigurationError, Settings, load_settings
from chat_ingest.db import migrate
from chat_ingest.db.engine import create_engine
from chat_ingest.db.unit_of_work import Database, describe
from chat_ingest.errors import ChatIngestError
from chat_ingest.importer import Line, RejectFile, Tally, export_lines, import_lines, read_lines
from chat_ingest.log_setup import configure_logging
from chat_ingest.metrics import MULTIPROCESS_DIR_VARIABLE
from chat_ingest.runtime import check_dify_schema, insert_policy, open_database, open_store
from chat_ingest.service import keys as keys_service
from chat_ingest.sinks import BatchLimits, DatabaseSink, HttpSink, SinkError

T = TypeVar("T")
app = typer.Typer(help="chat-ingest: store and read Dify-style chat records.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="API keys (stored as hashes, scoped to app ids).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        typer.echo(f"chat-ingest: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _migrates(settings: Settings) -> bool:
    """AUTO_MIGRATE, which never applies to a Dify database (nothing is changed there)."""
    return settings.auto_migrate and settings.table_layout == "seed"


def _refuse_in_dify_layout(settings: Settings, what: str) -> None:
    if settings.table_layout == "dify":
        typer.echo(f"chat-ingest: TABLE_LAYOUT=dify: {what}", err=True)
        raise typer.Exit(2)


def _database_refused(settings: Settings, exc: DBAPIError) -> str:
    """One line for a database that answered but cannot be used (wrong password, unknown
    database, read-only, ...); the URL is shown without its password."""
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    return f"cannot use the database {url}: {describe(exc)}"


def _reason(settings: Settings, exc: BaseException, default: str) -> str:
    """The database's own reason when ``exc`` was caused by one (a read-only server says
    so), else ``default``."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, DBAPIError):
        cause = cause.__cause__
    return _database_refused(settings, cause) if cause is not None else default


@contextmanager
def _one_line_errors(settings: Settings, prefix: str = "") -> Iterator[None]:
    """A database that cannot be reached or used is one line on stderr and exit 1, never a
    traceback."""
    try:
        yield
    except ChatIngestError as exc:
        typer.echo(f"chat-ingest: {prefix}{exc.message}", err=True)
        raise typer.Exit(1) from None
    except DBAPIError as exc:
        typer.echo(f"chat-ingest: {prefix}{_database_refused(settings, exc)}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # nothing listening, no route to the host
        typer.echo(f"chat-ingest: {prefix}cannot reach the database: {exc}", err=True)
        raise typer.Exit(1) from None


def _with_engine(settings: Settings, action: Callable[..., Awaitable[T]]) -> T:
    """Run ``action(engine)``; a database that cannot be reached is one line and exit 1."""

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    with _one_line_errors(settings):
        return asyncio.run(run())


def _in_transaction(action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``action`` in one transaction on the configured database (migrated first when
    AUTO_MIGRATE is on, as ``serve`` does); a domain error is one line and exit 1."""
    settings = _settings()
    _refuse_in_dify_layout(
        settings,
        "keys are Dify's app API keys (Dify's console, API Access) or API_KEYS; "
        "the keys commands manage the seed layout's api_keys table",
    )

    async def run(engine: AsyncEngine) -> T:
        if _migrates(settings):
            await migrate.upgrade(engine)
        return await Database(engine, time_budget=settings.db_timeout).run(action)

    return _with_engine(settings, run)


def _prepare_multiprocess_metrics() -> None:
    """Give the workers one empty directory to share their metrics through (the one in
    PROMETHEUS_MULTIPROC_DIR, or a new temporary one): values left by an earlier run would
    otherwise be added to this run's."""
    directory = Path(
        os.environ.get(MULTIPROCESS_DIR_VARIABLE) or tempfile.mkdtemp(prefix="chat-ingest-metrics-")
    )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)


def _check_bindable(host: str, port: int) -> None:
    """An address that does not resolve is one line naming API_HOST, not a server traceback."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        typer.echo(f"chat-ingest: invalid configuration: API_HOST: {host!r}: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [default: API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: API_PORT]")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes [default: API_WORKERS, else one per core]"),
    ] = None,
) -> None:
    """Run the HTTP API (uvicorn). On SIGTERM, requests in flight get up to 30 s to finish."""
    settings = _settings()
    host, port = host or settings.api_host, port or settings.api_port
    _check_bindable(host, port)
    # Here, so that a database that cannot be used, or a missing Dify table, is one clear
    # line. Without AUTO_MIGRATE a database that is only down starts the service anyway (it
    # answers 503 until it is back); a Dify database is only ever checked, never migrated.
    if settings.table_layout == "dify":
        _with_engine(settings, check_dify_schema)
    else:
        _with_engine(settings, migrate.upgrade if settings.auto_migrate else migrate.probe)
    workers = workers or settings.workers
    if workers > 1 and settings.metrics_enabled:
        _prepare_multiprocess_metrics()
    uvicorn.run(
        "chat_ingest.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        # Client addresses (rate limits, auth-failure limits, logs) come from X-Forwarded-For
        # only when the connection comes from a proxy listed in FORWARDED_ALLOW_IPS.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        limit_concurrency=settings.api_limit_concurrency,
        timeout_graceful_shutdown=30,
    )


DIFY_OWNS_THE_SCHEMA = (
    "TABLE_LAYOUT=dify: nothing to do; a Dify database's schema is Dify's own (its migrations)"
)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    if settings.table_layout == "dify":
        typer.echo(DIFY_OWNS_THE_SCHEMA)
        return
    _with_engine(settings, lambda engine: migrate.upgrade(engine, revision))
    typer.echo(f"database at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current revision and the newest one available."""
    settings = _settings()
    if settings.table_layout == "dify":  # its alembic_version is Dify's own
        typer.echo(DIFY_OWNS_THE_SCHEMA)
        return
    current = _with_engine(settings, migrate.current_revision)
    typer.echo(f"current: {current or 'none (empty database)'}; head: {migrate.head_revision()}")


@db_app.command("sql")
def db_sql() -> None:
    """Print the DDL for the configured backend, without touching the database."""
    typer.echo(migrate.offline_sql(_settings().database_url), nl=False)


def _open_input(source: str) -> IO[bytes]:
    if source == "-":
        return sys.stdin.buffer
    try:
        return Path(source).open("rb")
    except OSError as exc:
        typer.echo(f"chat-ingest: cannot read {source}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


def _default_rejects(source: str) -> Path:
    return Path("import.rejects.jsonl") if source == "-" else Path(f"{source}.rejects.jsonl")


@contextmanager
def _progress(source: str) -> Iterator[Callable[[int], None]]:
    """A rows and rows/s display on stderr, only when stderr is a terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), MofNCompleteColumn())
    with Progress(*columns, RowsPerSecond(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"importing {source}", total=None)
        yield lambda done: progress.advance(task, done)


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s")


INTERRUPT_GRACE_SECONDS = 5


def _interrupted_line(tally: Tally) -> str:
    return f"interrupted: {tally} so far; re-run to finish (nothing is stored twice)"


def _stop_on_interrupt(tally: Tally) -> None:
    """Ctrl-C cancels the running import so that it winds down and says what it stored. If
    winding down takes longer than a grace period (seen with SQLite: a cancelled chunk can
    leave aiosqlite's thread gone and a future that never resolves, and the process would
    wait forever), say it and exit at once: every chunk is its own transaction, so whatever
    did not commit is rolled back and a re-run stores exactly the rest."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def give_up() -> None:
        print(_interrupted_line(tally), file=sys.stderr, flush=True)
        os._exit(130)

    def interrupted() -> None:
        # aiosqlite's worker thread may then trip over a cancelled future or a closed loop;
        # its traceback would bury the one line below, and says nothing the line does not.
        threading.excepthook = lambda _: None
        main.cancel()
        loop.call_later(INTERRUPT_GRACE_SECONDS, give_up)

    loop.add_signal_handler(signal.SIGINT, interrupted)


async def _import(
    settings: Settings,
    lines: Iterator[Line],
    rejects: RejectFile,
    options: "ImportOptions",
    tally: Tally,
) -> None:
    _stop_on_interrupt(tally)
    with _progress(options.source) as on_progress:
        if options.url:
            http_sink = HttpSink(options.url, options.api_key, options.limits)
            try:
                await import_lines(
                    lines, http_sink, rejects, options.chunk_size, on_progress, tally
                )
            finally:
                await http_sink.aclose()
            return
        database = open_database(settings)
        try:
            if _migrates(settings):
                await migrate.upgrade(database.engine)
            store = await open_store(settings, database.engine)
            sink = DatabaseSink(database, store, insert_policy(settings))
            await import_lines(lines, sink, rejects, options.chunk_size, on_progress, tally)
        finally:
            await database.engine.dispose()


@dataclass(frozen=True)
class ImportOptions:
    source: str
    chunk_size: int
    url: str | None
    api_key: str | None
    limits: BatchLimits


def _refuse_rejects_onto_input(stream: IO[bytes], rejects: Path) -> None:
    """Writing the rejects would truncate the input before it is read: refuse, whichever
    path (symlink, hard link, relative) names the same file."""
    try:
        target = rejects.stat()
    except OSError:
        return  # does not exist yet (or cannot be looked at: opening it will say why)
    source = os.fstat(stream.fileno())
    if (source.st_dev, source.st_ino) == (target.st_dev, target.st_ino):
        typer.echo(
            f"chat-ingest: --rejects {rejects} is the input file itself; name another file",
            err=True,
        )
        raise typer.Exit(2)


@app.command("import")
def import_(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="JSON Lines; - reads stdin")],
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000, help="Lines per write")] = 1000,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where rejected lines go [default: FILE.rejects.jsonl]"),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Send chunks to this service's batch endpoint instead")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --url")] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(min=1024, help="With --url: largest request [default: MAX_BODY_BYTES]"),
    ] = None,
    max_batch_items: Annotated[
        int | None,
        typer.Option(min=1, help="With --url: most items per request [default: MAX_BATCH_ITEMS]"),
    ] = None,
) -> None:
    """Bulk-load insert bodies from JSON Lines. Safe to re-run: nothing is stored twice.

    Exit status: 0 all stored, 3 some lines rejected (see the rejects file), 1 failure,
    2 bad usage, 130 interrupted (Ctrl-C)."""
    settings = _settings()
    # The import ends with its own one-line outcome; the retry and outage notes the unit of
    # work logs for a service's operators would only repeat it on the terminal, and so would
    # the pool's complaint about connections whose reset Ctrl-C cancelled.
    logging.getLogger("chat_ingest.db").setLevel(logging.ERROR)
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    limits = BatchLimits(
        max_body_bytes or settings.max_body_bytes, max_batch_items or settings.max_batch_items
    )
    options = ImportOptions(source, chunk_size, url, api_key, limits)
    stream = _open_input(source)
    rejects_path = rejects or _default_rejects(source)
    _refuse_rejects_onto_input(stream, rejects_path)
    try:
        reject_file = RejectFile(rejects_path)
    except OSError as exc:
        typer.echo(f"chat-ingest: cannot write {rejects_path}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    tally = Tally()
    try:
        with _one_line_errors(settings, prefix="import stopped: "):
            try:
                asyncio.run(_import(settings, read_lines(stream), reject_file, options, tally))
            except SinkError as exc:
                typer.echo(
                    f"chat-ingest: import stopped: {_reason(settings, exc, str(exc))}", err=True
                )
                raise typer.Exit(1) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo(_interrupted_line(tally), err=True)
        raise typer.Exit(130) from None
    finally:
        reject_file.close()
        stream.close()
    typer.echo(str(tally))
    if tally.rejected:
        typer.echo(f"rejected lines are in {reject_file.path}", err=True)
        raise typer.Exit(3)


@app.command()
def export(
    app_id: Annotated[str, typer.Option(help="The app whose messages to export")],
    user_id: Annotated[str | None, typer.Option(help="Only this end user's")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only messages created at or after (ISO 8601, UTC)")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="File to write [default: stdout]")] = None,
) -> None:
    """Write an app's messages, oldest first, as JSON Lines of insert bodies (the import
    format: importing them into an empty database reproduces the same records)."""
    settings = _settings()
    since_utc = since.replace(tzinfo=since.tzinfo or UTC) if since else None
    sink = output.open("wb") if output else sys.stdout.buffer

    async def run(engine: AsyncEngine) -> int:
        if _migrates(settings):
            await migrate.upgrade(engine)
        store = await open_store(settings, engine)
        bodies = store.export_messages(engine, app_id, user_id, since_utc)
        return await export_lines(bodies, sink.write)

    try:
        count = _with_engine(settings, run)
    finally:
        sink.flush()
        if output:
            sink.close()
    typer.echo(f"exported {count} messages", err=True)


@keys_app.command("create")
def keys_create(
    app_id: Annotated[
        list[str], typer.Option("--app-id", help="An app the key may use (repeat; * = all)")
    ],
    name: Annotated[str | None, typer.Option(help="A label shown by `keys list`")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    key_id, key = _in_transaction(
        lambda connection: keys_service.create_key(connection, app_id, name)
    )
    typer.echo(f"key id: {key_id}", err=True)
    typer.echo("store this key now, it will not be shown again:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (id, apps, state), never the keys themselves."""
    for info in _in_transaction(keys_service.list_keys):
        state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "active"
        label = f"  {info.name}" if info.name else ""
        apps = "|".join(info.app_ids)
        created = info.created_at.isoformat()
        typer.echo(f"{info.key_id}  {state}  apps={apps}  created {created}{label}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key; running services stop accepting it within API_KEY_CACHE_TTL seconds."""
    _in_transaction(lambda connection: keys_service.revoke_key(connection, key_id))
    typer.echo(f"revoked {key_id}")
