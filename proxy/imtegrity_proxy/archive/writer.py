"""The writer thread: group commit of queued records into the SQLite archive.

sqlite3 calls block, so one dedicated thread owns the write connection and the event
loop only queues jobs. The thread takes the first queued record, then keeps taking
records until it has `max_batch` of them or `max_delay` seconds have passed since the
first. It chains and inserts the batch in one transaction and commits it. Only then does
it resolve each caller's future with the record id. If anything fails, it rolls the
transaction back and every record of the batch gets an ArchiveError.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .chain import link_records
from .record import STORED_FIELDS, ArchiveError, PendingRecord, format_time
from .schema import INSERT_RECORD, connect_writable, read_head, write_head

logger = logging.getLogger("imtegrity.archive")


@dataclass(frozen=True, slots=True)
class AppendJob:
    """A record to archive and the future that receives its id or an ArchiveError."""

    pending: PendingRecord
    future: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class ProbeJob:
    """A write probe whose future receives True when a small commit succeeded."""

    future: asyncio.Future[bool]


_STOP = object()
_Job = AppendJob | ProbeJob | object


class BatchWriter(threading.Thread):
    """The thread that owns the write connection and commits queued records in batches.

    `commit_count`, `failure_count` and `last_commit_seconds` are written only by this
    thread. Other threads may read them at any time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_batch: int,
        max_delay: float,
        busy_timeout: float,
    ) -> None:
        super().__init__(name="imtegrity-archive-writer", daemon=True)
        self.path = os.fspath(path)
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.busy_timeout = busy_timeout
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.commit_count = 0
        self.failure_count = 0
        self.last_commit_seconds = 0.0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._held_job: _Job | None = None

    def submit(self, job: AppendJob | ProbeJob) -> None:
        """Queue a job. The thread resolves its future on the future's event loop."""
        self._jobs.put(job)

    def request_stop(self) -> None:
        """Ask the thread to finish the jobs queued so far, then close the database."""
        self._jobs.put(_STOP)

    def run(self) -> None:
        try:
            connection = connect_writable(self.path, self.busy_timeout)
        # Archive.open raises this error to its caller.
        except ArchiveError as exc:
            self.ready.set_exception(exc)
            return
        self.ready.set_result(None)
        try:
            self._serve(connection)
        finally:
            self._close_connection(connection)
            self._fail_remaining_jobs()
            self.stopped.set_result(None)

    def _close_connection(self, connection: sqlite3.Connection) -> None:
        try:
            connection.close()
        # Closing checkpoints the WAL, which can fail on a full or locked disk. Every
        # committed record is already durable in the WAL, so the failure is only logged.
        except sqlite3.Error as exc:
            logger.warning("archive close failed: path=%s error=%s", self.path, exc)

    def _serve(self, connection: sqlite3.Connection) -> None:
        while True:
            job = self._next_job()
            if job is _STOP:
                return
            if isinstance(job, ProbeJob):
                self._probe(connection, job)
            elif isinstance(job, AppendJob):
                self._commit_batch(connection, self._collect_batch(job))

    def _next_job(self) -> _Job:
        if self._held_job is not None:
            job, self._held_job = self._held_job, None
            return job
        return self._jobs.get()

    def _collect_batch(self, first: AppendJob) -> list[AppendJob]:
        batch = [first]
        deadline = time.monotonic() + self.max_delay
        while len(batch) < self.max_batch:
            job = self._get_before(deadline)
            if job is None:
                break
            if not isinstance(job, AppendJob):
                # A probe or stop request waits until this batch is committed.
                self._held_job = job
                break
            batch.append(job)
        return batch

    def _get_before(self, deadline: float) -> _Job | None:
        remaining = deadline - time.monotonic()
        try:
            if remaining > 0:
                return self._jobs.get(timeout=remaining)
            # Past the deadline, records already queued still join the batch.
            return self._jobs.get_nowait()
        # An empty queue ends the batch.
        except queue.Empty:
            return None

    def _commit_batch(self, connection: sqlite3.Connection, batch: list[AppendJob]) -> None:
        started = time.monotonic()
        try:
            ids = write_batch(connection, [job.pending for job in batch])
        except (sqlite3.Error, ArchiveError) as exc:
            self._fail_batch(batch, exc)
            return
        # Any other error is a bug here. It must still fail these callers and keep the
        # thread serving, so it is logged with its traceback.
        except Exception as exc:
            logger.exception("archive commit failed: path=%s", self.path)
            self._fail_batch(batch, exc)
            return
        self.last_commit_seconds = time.monotonic() - started
        self.commit_count += 1
        _settle(batch, ids)

    def _fail_batch(self, batch: list[AppendJob], exc: Exception) -> None:
        self.failure_count += 1
        error = str(exc)
        if isinstance(exc, sqlite3.Error):
            error = f"{exc} ({exc.sqlite_errorname})"
        logger.error(
            "archive commit failed and was rolled back: path=%s records=%d error=%s failures=%d",
            self.path,
            len(batch),
            error,
            self.failure_count,
        )
        message = f"archive commit to {self.path} failed: {error}"
        _settle(batch, [ArchiveError(message) for _ in batch])

    def _probe(self, connection: sqlite3.Connection, job: ProbeJob) -> None:
        try:
            write_probe(connection)
        except sqlite3.Error as exc:
            logger.warning("archive write probe failed: path=%s error=%s", self.path, exc)
            _settle([job], [False])
            return
        _settle([job], [True])

    def _fail_remaining_jobs(self) -> None:
        jobs = [self._held_job] if self._held_job is not None else []
        self._held_job = None
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            # The queue is drained.
            except queue.Empty:
                break
        for job in jobs:
            if isinstance(job, AppendJob):
                _settle([job], [ArchiveError(f"archive {self.path} is closed")])
            elif isinstance(job, ProbeJob):
                _settle([job], [False])


def write_batch(connection: sqlite3.Connection, pending: Sequence[PendingRecord]) -> list[int]:
    """Insert the records in one transaction, chained after the stored head, and commit.

    Returns the new ids in order. On any error the transaction is rolled back and the error
    propagates. The head is read inside the transaction, so the chain stays correct after a
    failed commit or a write by another process.
    """
    _rollback_leftover(connection)
    connection.execute("BEGIN IMMEDIATE")
    try:
        head_id, head_hash, count = read_head(connection)
        rows = link_records(pending, head_id, head_hash)
        connection.executemany(
            INSERT_RECORD, [_db_values(row, item) for row, item in zip(rows, pending, strict=True)]
        )
        write_head(connection, rows[-1]["id"], rows[-1]["hash"], count + len(rows))
        # NOTE: if COMMIT fails in the WAL sync after the commit frame was written, WAL
        # recovery after a crash may still restore the batch although its callers got
        # ArchiveError. The archive can then hold more than was delivered, never less.
        connection.execute("COMMIT")
    # Roll back on any error, then let it propagate unchanged.
    except BaseException:
        _rollback_leftover(connection)
        raise
    return [row["id"] for row in rows]


def write_probe(connection: sqlite3.Connection) -> None:
    """Commit the current time to archive_meta key `probed_at`, to prove writes work."""
    _rollback_leftover(connection)
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "INSERT OR REPLACE INTO archive_meta (key, value) VALUES ('probed_at', ?)",
            (format_time(datetime.now(UTC)),),
        )
        connection.execute("COMMIT")
    # Roll back on any error, then let it propagate unchanged.
    except BaseException:
        _rollback_leftover(connection)
        raise


def _db_values(row: dict[str, object], item: PendingRecord) -> tuple[object, ...]:
    return tuple(item.details_json if name == "details" else row[name] for name in STORED_FIELDS)


def _rollback_leftover(connection: sqlite3.Connection) -> None:
    # SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR), so a
    # transaction may or may not still be open here.
    if not connection.in_transaction:
        return
    try:
        connection.execute("ROLLBACK")
    # The next write_batch retries the rollback before it begins, so a failure here is
    # only logged, and the caller receives the original error.
    except sqlite3.Error as exc:
        logger.warning("archive rollback failed: error=%s", exc)


def _settle(jobs: Sequence[AppendJob | ProbeJob], outcomes: Sequence[object]) -> None:
    """Resolve each job's future with its outcome, on the future's own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, object]]] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(job.future.get_loop(), []).append((job.future, outcome))
    for loop, results in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_futures, results)
        # The loop was closed before close() was awaited, so no caller can receive the
        # results. Committed records stay committed.
        except RuntimeError:
            logger.warning("event loop closed, %d archive results not delivered", len(results))


def _resolve_futures(results: list[tuple[asyncio.Future, object]]) -> None:
    for future, outcome in results:
        # A cancelled caller no longer waits. Its record may still have been committed.
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
