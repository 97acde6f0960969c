"""The archive writer a running server uses: articles sent over HTTP go through the same pipeline as the CLI.

Chroma is not safe across processes, so a server that is running is the one process that writes
its data directory: ``POST /articles`` lands here. Writes from several requests are serialised in
process; a CLI ingest (or another replica's write) holding the archive's writer lock makes a request fail fast
with ``Busy``.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from chromadb.errors import ChromaError

from backend.core.errors import Busy
from backend.core.types import Article, ArticleOutcome, FileFormat, FileOutcome, Removal
from backend.services import Services
from ingest.errors import RebuildNeeded
from ingest.loaders import FORMATS, LoadError, unsupported
from ingest.normalize import RecordError, article_from_record
from ingest.pipeline import ArchiveWriteError, Ingestor, IngestReport, WriterBusyError, delete_article

# A request waits this long for another request's write before it is told to retry.
_WAIT_S = 30.0
# ... and this long for another process's (an API worker's; a CLI ingest holds it far longer).
_LOCK_WAIT_S = 5.0
log = logging.getLogger(__name__)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """The upload's base name, reduced to characters that are harmless in a path; keeps the suffix."""
    base = _UNSAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base[:120] or "upload"


# Told the ids of the articles each write stored (new or changed): the saved questions' checker listens.
StoredHook = Callable[[list[str]], None]


class PipelineWriter:
    def __init__(self, services: Services, on_stored: StoredHook | None = None) -> None:
        self._on_stored = on_stored
        self._settings = services.settings
        self._store, self._registry, self._lexical = services.store, services.registry, services.lexical
        # A full rebuild of the lexical index never runs inside a request: here, as the server starts, and
        # otherwise in the background (``_rebuild_soon``) while requests are told to retry.
        self._ingestor = Ingestor(
            self._settings,
            services.embedder,
            self._store,
            self._registry,
            self._lexical,
            lock_wait_s=_LOCK_WAIT_S,
            rebuild_indexes=False,
        )
        self._lock = threading.Lock()
        self._wedged: str | None = None  # why writes are refused until a restart
        self._rebuilding: threading.Thread | None = None
        with suppress(WriterBusyError):  # an ingest run holds the directory: it brings the index in line itself
            self._ingestor.sync()

    def _rebuild_soon(self) -> None:
        """Rebuild the lexical index in a thread of its own, holding the writes back until it is done."""
        if self._rebuilding is not None and self._rebuilding.is_alive():
            return

        def rebuild() -> None:
            with self._lock:
                try:
                    self._ingestor.sync()
                except Exception:  # the next write tries again, and says so to its client
                    log.exception("rebuilding the lexical index failed")

        self._rebuilding = threading.Thread(target=rebuild, name="byline-lexical-rebuild", daemon=True)
        self._rebuilding.start()

    def wait_for_rebuild(self, timeout_s: float | None = None) -> None:
        """Return once a background rebuild has finished (tests, and a server shutting down)."""
        if self._rebuilding is not None:
            self._rebuilding.join(timeout_s)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self._wedged is not None:
            raise ArchiveWriteError(self._wedged)
        if not self._lock.acquire(timeout=_WAIT_S):
            raise Busy("the archive is busy with another write; try again shortly", retry_after_s=10)
        try:
            yield
        except RebuildNeeded:
            self._rebuild_soon()
            raise
        except WriterBusyError as exc:
            hidden = "the data directory" if self._settings.database_url is None else "the shared database"
            raise Busy(str(exc).replace(exc.where or str(self._settings.data_dir), hidden), retry_after_s=30) from exc
        except ArchiveWriteError as exc:
            if self._settings.chroma.mode == "embedded" and isinstance(exc.__cause__, ChromaError):
                # Embedded Chroma that failed a write (a full disk) hangs on the next one in this process;
                # a restart replays its log. Refuse writes until then instead of hanging a request forever.
                self._wedged = (
                    f"{exc}. The vector store refuses further writes from this server process after a failed one:"
                    " restart the server once the cause is fixed"
                )
            raise
        finally:
            self._lock.release()

    def _stored(self, report: IngestReport) -> None:
        if self._on_stored is not None and (stored := report.stored()):
            try:
                self._on_stored(stored)
            except Exception:  # the articles are stored; a listener's failure is its own, logged
                log.exception("telling the saved questions about %d new articles failed", len(stored))

    def add(self, records: Sequence[Mapping[str, Any]], origin: str = "api") -> list[ArticleOutcome]:
        """Every record gets an outcome in request order; a bad record fails alone. ``origin`` is recorded
        with each stored article (the followed source's URL, for the poller)."""
        outcomes: dict[int, ArticleOutcome] = {}
        articles: list[tuple[Article, LoadError]] = []
        owner: dict[str, int] = {}
        noted: dict[int, list[str]] = {}  # what was kept otherwise than given (an implausible date, say)
        for index, record in enumerate(records):
            try:
                article, noted[index] = article_from_record(dict(record))
            except RecordError as exc:
                outcomes[index] = ArticleOutcome(index, None, "failed", str(exc))
                continue
            if article.id in owner:
                detail = f"the same id as article {owner[article.id]} of this request; skipped"
                outcomes[index] = ArticleOutcome(index, article.id, "failed", detail)
                continue
            owner[article.id] = index
            articles.append((article, LoadError(Path("request"), index, "")))
        with self._writing():
            report = self._ingestor.ingest_articles(articles, origin=origin)
        self._stored(report)
        for article_id, index in owner.items():
            status, detail = report.outcomes.get(article_id, ("failed", "not stored"))
            detail = "; ".join([detail, *noted.get(index, [])])
            outcomes[index] = ArticleOutcome(index, article_id, status, detail)  # type: ignore[arg-type]
        return [outcomes[i] for i in range(len(records))]

    def formats(self) -> list[FileFormat]:
        return [FileFormat(f.name, f.label, f.suffixes) for f in FORMATS.values()]

    def add_file(self, name: str, data: BinaryIO) -> FileOutcome:
        """Ingest one uploaded file, read by its name's suffix like a file given to ``byline ingest``.

        A name no format reads is refused before the upload is copied or waits for the write lock."""
        shown = safe_name(name)
        if reason := unsupported(Path(shown)):
            return FileOutcome(shown, 0, 0, 0, 0, 0, errors=(f"{shown}: {reason}",), warnings=())
        folder = Path(tempfile.mkdtemp(prefix="byline-upload-"))
        try:
            path = folder / shown
            with path.open("wb") as fh:
                shutil.copyfileobj(data, fh)
            with self._writing():
                report = self._ingestor.ingest([path], origin=f"upload:{shown}")
            self._stored(report)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

        def told(e: LoadError) -> str:  # the temporary path is ours, not the client's business
            where = f"{shown}:{e.line}" if e.line is not None else shown
            return f"{where}: {e.message.replace(str(path), shown).replace(str(folder), '')}"

        return FileOutcome(
            name=shown,
            records=report.records,
            new=report.articles_new,
            updated=report.articles_updated,
            unchanged=report.articles_unchanged,
            copies=report.exact_copies,
            errors=tuple(told(e) for e in report.errors),
            warnings=tuple(told(w) for w in report.warnings),
        )

    def delete(self, id_or_url: str) -> Removal:
        with self._writing():  # an unknown article raises ArticleNotFoundError, a NotFound: 404
            return delete_article(
                self._settings, self._store, self._registry, self._lexical, id_or_url, lock_wait_s=_LOCK_WAIT_S
            )


def with_writer(services: Services, on_stored: StoredHook | None = None) -> Services:
    """The services of a server that accepts articles (``POST /articles``), sharing its store and model."""
    return replace(services, writer=PipelineWriter(services, on_stored))
