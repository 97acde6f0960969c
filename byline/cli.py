"""The ``byline`` command. Heavy imports (torch, Chroma) happen inside commands so ``--help`` is quick."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from byline.exits import exit_code, exits, tell
from eval.cli import app as eval_app
from ingest.loaders import describe as describe_formats

if TYPE_CHECKING:
    from backend.core.protocols import Embedder
    from backend.settings import Settings
    from ingest.pipeline import Ingestor

app = typer.Typer(
    help="Byline: ask a news archive questions, get answers that cite the articles.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(eval_app, name="eval")
feedback_app = typer.Typer(help="Readers' feedback on answers.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path | None, typer.Option(help="JSON Lines file (default: standard output).")] = None,
) -> None:
    """Every thumbs up/down with its comment, question, answer and citations, oldest first (JSON Lines).

    Only reads, so it is safe while the server runs."""
    import json

    from backend.answering.feedback import FeedbackStore
    from backend.settings import get_settings
    from backend.store.db import database_for

    settings = get_settings()
    rows = FeedbackStore(database_for(settings, settings.sessions_db)).export()
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if out is None:
        sys.stdout.writelines(lines)
        return
    with out.open("w", encoding="utf-8") as fh:
        count = sum(fh.write(line) > 0 for line in lines)
    typer.echo(f"{count} feedback records written to {out}", err=True)


class _Reporting(Protocol):
    def progress_line(self) -> str: ...


def _progress(quiet: bool) -> Callable[[_Reporting], None]:
    """A one-line bar on a terminal (bytes done, articles, chunks/s, ETA); a log line per batch otherwise."""
    tty = sys.stderr.isatty()

    def show(report: _Reporting) -> None:
        if quiet:
            return
        line = report.progress_line()
        sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
        sys.stderr.flush()

    return show


def _local_settings() -> Settings:
    """Settings for a command that opens the archive in this process: refused (exit 2) while a
    server has the same embedded Chroma directory open, since two processes must not share it."""
    from backend.settings import get_settings
    from backend.store.ownership import ensure_not_served

    settings = get_settings()
    if settings.chroma.mode == "embedded":
        with exits():
            ensure_not_served(settings.data_dir)
    return settings


def _ingestor(embedder: Embedder | None = None) -> Ingestor:
    """Refuses (``EncoderMismatch``) an archive whose vectors another encoder made."""
    from backend.embedding import build_embedder
    from backend.services import build_registry, build_store
    from ingest.pipeline import Ingestor

    settings = _local_settings()
    embedder = embedder or build_embedder(settings.embedding)
    return Ingestor(settings, embedder, build_store(settings, embedder.identity()), build_registry(settings))


def _check_watches(settings: Settings, embedder: Embedder, quiet: bool) -> None:
    """The saved questions checked against what this ingest stored (queued by ``ingest``), as a server
    would, with a progress line on stderr; each new event's first webhook delivery is tried once, and what
    fails is left for a server's retries."""
    from backend.answering.watch import CheckReport, WatchRunner
    from backend.services import build_checker, build_sender, build_services

    services = build_services(settings, embedder)
    try:
        tty = sys.stderr.isatty()

        def show(report: CheckReport, left: int) -> None:
            if not quiet:
                line = f"{report.line()}, {left} articles left"
                sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
                sys.stderr.flush()

        report = WatchRunner(build_checker(services), services.watches).run_pending(show)
        if not quiet and tty:
            sys.stderr.write("\n")
        if report.events:
            sender = build_sender(services)
            try:
                sender.deliver_due()
            finally:
                sender.stop()
        typer.echo(report.line())
    finally:
        services.close()


@contextmanager
def _writing(data_dir: Path) -> Iterator[None]:
    """A command that writes the archive: a failed write said in words (``storage_errors``), then every
    error given its exit status by the one table (``byline.exits``)."""
    from ingest.storage import storage_errors

    with exits(data_dir), storage_errors(data_dir):
        yield


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help=f"Files or folders, each file read by its suffix ({describe_formats()}). - reads JSONL from stdin."
        ),
    ],
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when the index already has chunks.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove stored articles that came from these paths and are gone from them.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")] = False,
) -> None:
    """Clean, deduplicate, chunk and embed articles into the archive in BYLINE_DATA_DIR. Safe to re-run.

    Unchanged articles are not embedded again; broken files and records are reported and skipped.
    The exit status is 1 only when nothing could be ingested.
    """
    from backend.embedding import build_embedder
    from backend.services import build_store
    from backend.store.db import database_for
    from backend.store.watches import WatchStore

    settings = _local_settings()
    embedder = build_embedder(settings.embedding)
    watches = WatchStore(database_for(settings, settings.watches_db)) if settings.watches.enabled else None
    with _writing(settings.data_dir):
        if if_empty and (count := build_store(settings).count()) > 0:
            typer.echo(f"The archive in {settings.data_dir} already has {count} chunks; nothing to do.")
            return
        report = _ingestor(embedder).ingest(paths, progress=_progress(quiet), prune=prune)
        # Queued before the writer lock is let go: whoever checks next (this command, or a server) finds them.
        checking = watches is not None and watches.count() > 0 and bool(report.stored())
        if watches is not None and checking:
            watches.enqueue(report.stored())
    if not quiet and sys.stderr.isatty():
        sys.stderr.write("\n")
    typer.echo(report.summary())
    if checking:
        with exits(settings.data_dir):
            _check_watches(settings, embedder, quiet)
    if report.errors and report.articles_seen == 0:
        raise typer.Exit(1)


@app.command(name="backup")
def backup_command(
    directory: Annotated[Path, typer.Argument(help="A new (or empty) directory for the copy.", file_okay=False)],
) -> None:
    """Copy the archive in BYLINE_DATA_DIR to DIRECTORY, consistently: refused while an ingest writes or a
    server has the embedded store open. SQLite files are copied with SQLite's backup API, Chroma's files
    under the writer lock; a manifest lists every file with its checksum. A refusal (a writer or a server
    holds the archive, a bad target) exits 2; a failed copy 1."""
    from backend.settings import get_settings
    from ingest.backup import backup

    with exits():
        report = backup(get_settings(), directory)
    typer.echo(report.summary(f"backed up to {report.path}:"))


@app.command(name="restore")
def restore_command(
    directory: Annotated[Path, typer.Argument(help="A directory written by byline backup.", file_okay=False)],
) -> None:
    """Replace the archive in BYLINE_DATA_DIR by the backup in DIRECTORY, after checking every file of it.
    Refused while an ingest writes or a server has the store open; the replaced archive is kept beside it."""
    from backend.settings import get_settings
    from ingest.backup import restore

    with exits():
        report = restore(get_settings(), directory)
    typer.echo(report.summary(f"restored {report.path} from {directory}:"))


db_app = typer.Typer(help="The shared PostgreSQL database (BYLINE_DATABASE_URL).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("import")
def db_import(
    directory: Annotated[Path, typer.Argument(help="A data directory of the embedded default.", file_okay=False)],
) -> None:
    """Copy the SQLite stores of DIRECTORY (articles, lexical index, conversations and feedback, feeds, saved
    questions) into the database BYLINE_DATABASE_URL names, each store whole or not at all. Refused while a
    server has DIRECTORY open, and for a store the database already holds. The vectors stay in
    DIRECTORY/chroma: serve them with `chroma run --path DIRECTORY/chroma` and BYLINE_CHROMA__MODE=http."""
    from backend.settings import get_settings
    from ingest.transfer import import_state

    with exits(directory):
        copied = import_state(directory, get_settings(), lambda line: typer.echo(line, err=True))
    for store in copied:
        typer.echo(f"{store.branch}: {sum(store.rows.values()):,} rows in {len(store.rows)} tables")


@app.command()
def delete(ids: Annotated[list[str], typer.Argument(help="Article ids or URLs.")]) -> None:
    """Remove articles (by id or URL) and their chunks from the archive."""
    from backend.services import build_lexical, build_registry, build_store
    from ingest.errors import ArticleNotFoundError
    from ingest.pipeline import delete_article

    settings = _local_settings()
    failed: int | None = None  # one missing article does not stop the others
    with _writing(settings.data_dir):
        store, registry, lexical = build_store(settings), build_registry(settings), build_lexical(settings)
        for id_or_url in ids:
            try:
                typer.echo(delete_article(settings, store, registry, lexical, id_or_url))
            except ArticleNotFoundError as exc:
                tell(exc)
                failed = exit_code(exc)
    if failed is not None:
        raise typer.Exit(failed)


feeds_app = typer.Typer(help="Followed feeds and news sitemaps (polled by `byline serve` or `byline follow`).")
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="An RSS or Atom feed, or a news sitemap.")],
    title: Annotated[str | None, typer.Option(help="The outlet's name, given to its articles.")] = None,
    interval: Annotated[float | None, typer.Option(min=1.0, help="Seconds between polls.")] = None,
) -> None:
    """Follow a source; a running server (or `byline follow`) polls it within seconds."""
    from backend.core.net import checked_url
    from backend.settings import get_settings
    from backend.store.db import database_for
    from backend.store.feeds import FeedStore

    settings = get_settings()
    with exits():
        canonical = checked_url(url, settings.follow.networks())
        source = FeedStore(database_for(settings, settings.feeds_db)).add(canonical, title, interval)
    typer.echo(f"following {source.url} (source {source.id})")


@feeds_app.command("list")
def feeds_list() -> None:
    """Every followed source with its health: last poll, status, new articles, last error."""
    from backend.settings import get_settings
    from backend.store.db import database_for
    from backend.store.feeds import FeedStore, effective_interval_s

    settings = get_settings()
    sources = FeedStore(database_for(settings, settings.feeds_db)).sources()
    if not sources:
        typer.echo("no sources followed; add one with `byline feeds add URL`", err=True)
        return
    for s in sources:
        last = s.last_fetch_at or "never"
        every = effective_interval_s(s, settings.follow)
        typer.echo(
            f"{s.id}  {s.last_status:<12} last {last}  new {s.last_new} (total {s.total_new})  every {every:.0f} s"
            f"  {s.title or s.feed_title or s.kind or ''}  {s.url}"
        )
        if s.last_error:
            typer.echo(f"    error ({s.failures} in a row): {s.last_error}")


@feeds_app.command("remove")
def feeds_remove(ids: Annotated[list[str], typer.Argument(help="Source ids or URLs.")]) -> None:
    """Stop following sources; the articles they brought stay in the archive."""
    from backend.settings import get_settings
    from backend.store.db import database_for
    from backend.store.feeds import FeedStore

    settings = get_settings()
    feeds = FeedStore(database_for(settings, settings.feeds_db))
    with exits():
        for id_or_url in ids:
            typer.echo(f"no longer following {feeds.remove(id_or_url).url}")


@app.command()
def follow(
    once: Annotated[bool, typer.Option("--once", help="Poll every source once, now, then exit.")] = False,
) -> None:
    """Poll the followed sources, storing their new articles (as `byline serve` does unless
    BYLINE_FOLLOW__ENABLED=false). Refused while another process polls this archive."""
    import logging
    import signal
    import threading

    from backend.services import build_services, start_watching
    from ingest.follow.poller import FollowerBusy, Poller, follow_lock
    from ingest.writer import with_writer

    settings = _local_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    with _writing(settings.data_dir):
        held = follow_lock(settings)
        if held is None:
            raise FollowerBusy(
                "another Byline process (a server, or `byline follow`) polls this archive's sources already"
            )
        services = build_services(settings)
        if settings.watches.enabled:  # saved questions are checked against what the poller stores, as a server does
            services = start_watching(services)
        services = with_writer(services, on_stored=services.watching.runner.notify if services.watching else None)
        assert services.writer is not None  # with_writer gave it one
        poller = Poller(settings.follow, services.feeds, services.writer)
        try:
            if once:
                sources = services.feeds.sources()
                if not sources:
                    typer.echo("no sources followed; add one with `byline feeds add URL`", err=True)
                for source in sources:
                    polled = poller.poll(source)
                    typer.echo(
                        f"{source.url}: {polled.status}, {polled.new} new"
                        + (f"; {polled.error}" if polled.error else "")
                    )
                if services.watching is not None:  # before exiting: the saved questions against what was stored
                    typer.echo(services.watching.runner.run_pending().line())
                return
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            typer.echo(f"following {len(services.feeds.sources())} sources; Ctrl-C stops", err=True)
            poller.run(stop, held)  # FollowerBusy, exit 2, once the lock is lost (its database session ended)
        finally:
            poller.close()
            services.close()
            held.release()


def exposure_warning(host: str, has_keys: bool) -> str | None:
    """The warning for a server others can reach without a key (loopback addresses are private)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        loopback = False
    if has_keys or loopback:
        return None
    return (
        f"warning: serving on {host} without API keys: anyone who reaches it can ask, read and write the archive;"
        " set BYLINE_API_KEYS (and BYLINE_ADMIN_KEYS for writes)"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    root_path: Annotated[str, typer.Option(help="The path prefix a reverse proxy serves the API under.")] = "",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; more than one needs Chroma http mode.")] = 1,
) -> None:
    """Start the HTTP API (docs at /docs). While it runs, ingest through it (POST /articles), or use
    Chroma http mode (BYLINE_CHROMA__MODE=http), where ingest and several workers share one Chroma server."""
    import uvicorn

    from backend.settings import get_settings

    settings = get_settings()
    if workers > 1 and settings.chroma.mode != "http":
        typer.echo(
            "error: several workers cannot share embedded Chroma (one process per data directory);"
            " start a Chroma server and set BYLINE_CHROMA__MODE=http",
            err=True,
        )
        raise typer.Exit(2)
    _check_encoder(settings)
    if warning := exposure_warning(host, bool(settings.api_key_list())):
        typer.echo(warning, err=True)
    from byline.server import proxy_options

    uvicorn.run(
        "byline.server:create",
        factory=True,
        host=host,
        port=port,
        root_path=root_path,
        workers=workers,
        **proxy_options(settings),
    )


def _check_encoder(settings: Settings) -> None:
    """Refuse (exit 2) to serve an archive whose vectors another encoder made, before any worker starts.

    Each worker checks again as it builds its services (``byline.server.create``); a Chroma server that is
    down is left to them, which answer 503 until it is back."""
    from backend.core.errors import EncoderMismatch, StoreUnavailable
    from backend.embedding import build_embedder
    from backend.services import build_store

    with exits():
        try:
            build_store(settings, build_embedder(settings.embedding).identity())
        except EncoderMismatch:
            raise
        except StoreUnavailable:
            pass


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address for the chat UI.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the chat UI.")] = 8501,
    api_url: Annotated[
        str, typer.Option(envvar="BYLINE_API_URL", help="Where the API runs.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Start the Streamlit chat, which talks to the API over HTTP."""
    import ui as ui_package

    app_path = Path(ui_package.__file__).parent / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    raise typer.Exit(subprocess.call(command, env={**os.environ, "BYLINE_API_URL": api_url}))


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from exc


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    as_of: Annotated[str | None, typer.Option(help="Ask as of this day (YYYY-MM-DD); default today.")] = None,
    k: Annotated[int | None, typer.Option(min=1, max=50, help="Passages to retrieve.")] = None,
    session: Annotated[str | None, typer.Option(help="Session id, to ask a follow-up.")] = None,
) -> None:
    """Answer one question from the archive and print the numbered sources.

    Runs in this process: do not point it at a data directory a running server is using.
    """
    from backend.core.dates import today_utc
    from backend.services import build_services

    day = _parse_day(as_of) or today_utc()
    with exits():
        services = build_services(_local_settings())
        try:
            answer = services.answers.ask(question, session_id=session, as_of=day, k=k)
        finally:
            services.close()
    typer.echo(answer.text)
    if answer.citations:
        typer.echo("\nSources:")
    for c in answer.citations:
        when = c.published_at.date().isoformat() if c.published_at else "undated"
        typer.echo(f"[{c.n}] {c.title} ({c.source or 'unknown outlet'}, {when}) {c.url or c.article_id}")
    typer.echo(f"\nsession: {answer.session_id}")


@app.command()
def reindex(
    batch_size: Annotated[int, typer.Option(min=1, help="Chunks embedded and written per batch.")] = 256,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")] = False,
) -> None:
    """Re-embed every chunk of the archive with the configured embedder (BYLINE_EMBEDDING__MODEL).

    Needed after changing the model: the server refuses an archive another encoder embedded. The old vectors
    stay live until the new ones are complete; a run that is stopped resumes where it was when run again."""
    from backend.embedding import build_embedder
    from ingest.reindex import reindex as run_reindex

    settings = _local_settings()
    with exits(settings.data_dir):
        report = run_reindex(
            settings, build_embedder(settings.embedding), progress=_progress(quiet), batch_size=batch_size
        )
    if not quiet and sys.stderr.isatty():
        sys.stderr.write("\n")
    typer.echo(report.summary())


@app.command()
def tune(
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training pairs.")] = 1,
    max_pairs: Annotated[int, typer.Option(min=4, help="Articles used at most (a seeded sample).")] = 2000,
    batch_size: Annotated[
        int, typer.Option(min=2, help="Pairs per step; the others in a batch are its negatives.")
    ] = 32,
    seed: Annotated[int, typer.Option(help="Seeds the sample, the held-out split and the training.")] = 0,
    held_out: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Share of the articles kept out to measure.")
    ] = 0.1,
) -> None:
    """Fine-tune the embedding model on the archive's own headlines and leads (CPU; pip install '.[tune]').

    Each headline is a question whose answer is its article's first chunk; the other articles of a batch are
    the wrong answers. Reports headline -> article hit@1 and MRR on held-out articles for the stock and the
    tuned model, saves the tuned one under BYLINE_DATA_DIR/models/ and says how to use it. It never touches
    the archive's vectors: use the model, then run `byline reindex`."""
    from backend.services import build_store
    from ingest.tune import tune as run_tune

    settings = _local_settings()
    with exits():
        report = run_tune(
            settings,
            build_store(settings),
            epochs=epochs,
            max_pairs=max_pairs,
            batch_size=batch_size,
            seed=seed,
            held_out=held_out,
            say=lambda line: typer.echo(line, err=True),
        )
    typer.echo(report.summary())
