"""The hash chain that links every archived record to the one before it.

Each record's `hash` is the SHA-256 hex digest of canonical_json() over all its stored
fields except `hash`, with `details` as a JSON object. The bytes hashed are the UTF-8
encoding of that text, so the chain can be recomputed from an export alone. The first
record's `prev_hash` is GENESIS_HASH.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .record import STORED_FIELDS, PendingRecord, build_row, canonical_json

GENESIS_HASH = "0" * 64

_HASHED_FIELDS = tuple(name for name in STORED_FIELDS if name != "hash")


def record_hash(row: Mapping[str, Any]) -> str:
    """Return the chain hash of a record given as a mapping of its stored fields."""
    content = {name: row[name] for name in _HASHED_FIELDS}
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def link_records(
    pending: Sequence[PendingRecord], head_id: int, head_hash: str
) -> list[dict[str, Any]]:
    """Assign ids after `head_id` and chain the records after `head_hash`, in order.

    Returns one dict per record with every stored field, `hash` included.
    """
    rows = []
    prev_hash = head_hash
    for offset, item in enumerate(pending, start=1):
        row = build_row(item, head_id + offset, prev_hash)
        row["hash"] = record_hash(row)
        prev_hash = row["hash"]
        rows.append(row)
    return rows
