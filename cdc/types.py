"""Values that cross the bridge's internal boundaries: change events, journal records, positions.

These are plain frozen, slotted dataclasses: they sit on the hot path (one per row change) and carry
already-serialized JSON, so that the journal and the file sink never re-encode an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A source offset as stored in the journal, like a Kafka Connect source offset: a small JSON object.
# PostgreSQL: {"lsn": <int, resume streaming after this commit LSN>, "txId": int, "ts_usec": int}
SourceOffset = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change as Kafka would carry it: topic, Debezium key JSON and value JSON.

    `key` is None for a table without a primary key; `value` is None for a tombstone.
    """

    topic: str
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """A change event as stored in the journal, with its global, gap-free-per-append sequence number."""

    seq: int
    topic: str
    key: bytes | None
    value: bytes | None
