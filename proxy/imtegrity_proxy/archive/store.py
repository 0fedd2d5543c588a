"""The asyncio interface of the archive: Archive.open, append, check_writable, close."""

from __future__ import annotations

import asyncio
import logging
import os
from types import TracebackType

from .record import ArchiveError, ArchiveRecord, prepare_record
from .writer import AppendJob, BatchWriter, ProbeJob

logger = logging.getLogger("imtegrity.archive")


class Archive:
    """An append-only, hash-chained SQLite archive with group commit.

    Create it with `await Archive.open(path)`. Every append waits until its record is
    durably committed. Appends issued together share one transaction and one fsync.
    """

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        max_batch: int = 256,
        max_delay: float = 0.005,
        busy_timeout: float = 5.0,
    ) -> Archive:
        """Open or create the archive database at `path` and start its writer thread.

        `max_batch` is the maximum number of records per transaction. `max_delay` is the
        maximum time in seconds the writer waits for more records after the first one of
        a batch. `busy_timeout` is the time in seconds a commit waits for a lock held by
        another connection before it fails. The parent directory must exist. Raises ArchiveError
        naming the path when the database cannot be opened.
        """
        _check_settings(max_batch, max_delay, busy_timeout)
        writer = BatchWriter(
            path, max_batch=max_batch, max_delay=max_delay, busy_timeout=busy_timeout
        )
        writer.start()
        await asyncio.wrap_future(writer.ready)
        logger.info("archive opened: path=%s max_batch=%d", writer.path, max_batch)
        return cls(writer)

    @property
    def path(self) -> str:
        """Path of the archive database."""
        return self._writer.path

    @property
    def commit_count(self) -> int:
        """Number of record batches committed since open."""
        return self._writer.commit_count

    @property
    def failure_count(self) -> int:
        """Number of record batches that failed and were rolled back since open."""
        return self._writer.failure_count

    @property
    def last_commit_seconds(self) -> float:
        """Duration in seconds of the latest committed batch transaction, 0.0 before any."""
        return self._writer.last_commit_seconds

    async def append(self, record: ArchiveRecord) -> int:
        """Archive one record and return its id once it is durably committed.

        Raises ArchiveError when the record is invalid, the archive is closed, or the
        commit failed. The caller must then treat the record as not archived. If the
        caller is cancelled while waiting, the record may still be committed.
        """
        self._check_open()
        pending = prepare_record(record)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._writer.submit(AppendJob(pending, future))
        return await future

    async def check_writable(self) -> bool:
        """Return whether a small commit to archive_meta succeeds now, for a readiness probe.

        The probe queues behind pending records, so it can take up to the busy timeout
        for each batch ahead of it while the database is locked.
        """
        if self._closed or not self._writer.is_alive():
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._writer.submit(ProbeJob(future))
        return await future

    async def close(self) -> None:
        """Commit the records queued so far, then close the database. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._writer.request_stop()
        await asyncio.wrap_future(self._writer.stopped)
        # The future resolves just before the thread ends; wait for the end itself.
        await asyncio.to_thread(self._writer.join, 5)
        logger.info(
            "archive closed: path=%s commits=%d failures=%d",
            self.path,
            self.commit_count,
            self.failure_count,
        )

    async def __aenter__(self) -> Archive:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ArchiveError(f"archive {self.path} is closed")
        if not self._writer.is_alive():
            raise ArchiveError(f"archive writer thread for {self.path} has stopped")


def _check_settings(max_batch: int, max_delay: float, busy_timeout: float) -> None:
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    if max_delay < 0:
        raise ValueError(f"max_delay must not be negative, got {max_delay}")
    if busy_timeout < 0:
        raise ValueError(f"busy_timeout must not be negative, got {busy_timeout}")
