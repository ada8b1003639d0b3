"""The durable journal between capture and delivery (design §2).

`sqlite.SqliteJournal` is the embedded backend: one SQLite file under the data dir holding change
events, source offsets, sink cursors and the TOAST cache. A Kafka backend for scale-out comes later.
"""

from __future__ import annotations

from cdc.journal.sqlite import JournalReader, SqliteJournal

__all__ = ["JournalReader", "SqliteJournal"]
