"""Tamper-evident message archive: SQLite in WAL mode, group commit and a hash chain.

Archive appends records from asyncio code and returns each id only after the record is
durably committed. verify_archive and export_records are plain functions for the CLI.
They open the database read-only.
"""

from .export import export_records, format_json_line
from .record import ArchiveError, ArchiveRecord, normalize_screen_name
from .store import Archive
from .verify import VerifyReport, verify_archive

__all__ = [
    "Archive",
    "ArchiveError",
    "ArchiveRecord",
    "VerifyReport",
    "export_records",
    "format_json_line",
    "normalize_screen_name",
    "verify_archive",
]
