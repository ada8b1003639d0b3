"""Journal retention: which records a source's `journal.retention.ms` / `journal.retention.bytes` let go,
and the task that removes them.

Role
    A source connector owns its journal topics (``<topic.prefix>.…``), as a Kafka topic owns its
    ``retention.ms`` / ``retention.bytes``; `RetentionPolicy` is that pair for one source. A record of one
    of its topics is removed only when BOTH

    (a) retention lets it go: it was journaled more than ``ms`` ago, or the source's newer records already
        hold ``bytes`` bytes (keys and values as stored, counted from the newest); and
    (b) every sink that may still need it is past it: each configured sink whose topic pattern matches
        the topic, at its committed cursor (0 when it never ran: a sink defined but never run pins the
        journal), and every other consumer that has a cursor row -- a sink left out of this run's files
        cannot be told apart from a deleted one, so it pins every topic until `cdc offsets delete`.

    A sink's cursor is the low watermark of what it delivered or dead-lettered (an API sink's lanes are
    all at or past it, its in-flight work after it), so a record at or before every such cursor is no
    sink's pending work. Dead letters hold their own copy of the event, and the TOAST cache and schema
    history describe the current rows and tables, not journal records: none of them is tied to records.

    Records are removed per topic, oldest first, as whole packed runs: what is left of a topic is
    always a suffix of it, and the journal remembers per topic the highest seq removed
    (`JournalReader.removed_upto`), which `cdc replay` uses to refuse positions retention has removed.
    A topic no source owns (its source was removed from the files) is kept.

    This module holds the decisions, as pure functions of what the journal reports (`plan`), and
    `retention_loop`, the task the runner starts; `SqliteJournal.prune` runs the SQL.

Journaled time
    The journal keeps a sparse time index, ``journaled_at (first_seq, at_ms)``: an append adds a row
    when at least `MARK_MS` passed since the last one (or the clock went back), saying "from this seq
    on, records were journaled at or after at_ms". Records before a row were committed before its time,
    so `age_upto` judges age by the NEXT row's time: a record is removed at most `MARK_MS` after it
    became old enough, never before. One row a second at most keeps the index small (about 600,000
    rows for seven days of constant traffic) and append as fast as before.

Failure story
    `SqliteJournal.prune` deletes in short write transactions (`PRUNE_BATCH_RUNS` runs each), each
    re-reading the sink cursors, so capture waits at most one batch and an interruption (crash, full
    disk, cancellation) leaves a shorter prefix removed, never a record a sink still needs.
    `retention_loop` logs a `Transient` failure (locked, disk full) and tries again at the next interval;
    a `Permanent` one (a corrupt journal) ends the task with the error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cdc.errors import Transient

__all__ = ["FOREVER", "MARK_MS", "PRUNE_BATCH_RUNS", "PruneResult", "RetentionPolicy",
           "TopicCut", "age_upto", "delivered_upto", "owner", "plan", "policies_of", "retention_loop",
           "sink_topics", "size_upto"]

log = logging.getLogger(__name__)

FOREVER = -1                                  # retention.ms / retention.bytes: no limit
MARK_MS = 1000                                # granularity of the journaled-time index
PRUNE_BATCH_RUNS = 256                        # packed runs deleted per write transaction
DEFAULT_INTERVAL_S = 60.0                     # how often retention_loop prunes


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One source's retention of its topics (those named ``<topic_prefix>.…``); the defaults are the
    source configuration's (`cdc.config.SourceModel`)."""

    topic_prefix: str
    ms: int
    bytes: int = FOREVER

    @property
    def keeps_everything(self) -> bool:
        return self.ms < 0 and self.bytes < 0


class RetentionSettings(Protocol):
    """What a source connector's configuration (`cdc.config.SourceModel`) says about retention."""

    @property
    def name(self) -> str: ...
    @property
    def topic_prefix(self) -> str: ...
    @property
    def journal_retention_ms(self) -> int: ...
    @property
    def journal_retention_bytes(self) -> int: ...


class SinkTopics(Protocol):
    """A sink connector's configuration: its name and the topics it reads."""

    @property
    def name(self) -> str: ...
    def topic_pattern(self) -> re.Pattern[str]: ...


def policies_of(sources: Iterable[RetentionSettings]) -> dict[str, RetentionPolicy]:
    """Source connector name -> its retention policy."""
    return {s.name: RetentionPolicy(s.topic_prefix, s.journal_retention_ms, s.journal_retention_bytes)
            for s in sources}


def sink_topics(sinks: Iterable[SinkTopics]) -> dict[str, re.Pattern[str]]:
    """Sink connector name -> the pattern of the topics it reads."""
    return {s.name: s.topic_pattern() for s in sinks}


@dataclass(frozen=True, slots=True)
class TopicCut:
    """What to remove of one topic: the runs whose last seq is <= `upto`."""

    topic_id: int
    topic: str
    source: str
    upto: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    runs: int = 0                 # packed runs removed
    records: int = 0              # records removed
    bytes: int = 0                # their keys and values, as stored
    # consumer -> its cursor, for the consumers that kept records retention would have removed
    pinned: Mapping[str, int] = field(default_factory=dict)
    free_bytes: int = 0           # space inside the journal file that new records reuse
    oldest: int | None = None     # the oldest record still in the journal (None: it holds none)


# -- decisions (pure) -------------------------------------------------------------------------------

def owner(topic: str, policies: Mapping[str, RetentionPolicy]) -> str | None:
    """The source whose topic this is: the longest `topic.prefix` that names it (None: no source)."""
    best: str | None = None
    length = -1
    for name, policy in policies.items():
        prefix = policy.topic_prefix
        if (topic == prefix or topic.startswith(f"{prefix}.")) and len(prefix) > length:
            best, length = name, len(prefix)
    return best


def age_upto(marks: Iterable[tuple[int, int]], before_ms: int) -> int:
    """The highest seq known to have been journaled before `before_ms` (0: none).

    `marks` are the journaled-time index's (first_seq, at_ms) rows in seq order. The scan stops at the
    first row at or after `before_ms`: if the clock went back, later rows may show earlier times, and
    stopping keeps those records rather than trusting them."""
    upto = 0
    for first_seq, at_ms in marks:
        if at_ms >= before_ms:
            break
        upto = first_seq - 1
    return upto


def size_upto(runs_newest_first: Iterable[tuple[int, str, int]], limits: Mapping[str, int]) -> dict[str, int]:
    """Per source with a byte limit: the highest seq beyond it (0: none), counting from the newest.

    `runs_newest_first` are (last_seq, source, bytes) of the journal's runs, newest first; `limits`
    source -> retention.bytes. A run is beyond the limit when the source's newer runs alone hold at least
    `limit` bytes, so a source keeps at least its limit. Stops reading once every limit is placed."""
    held = dict.fromkeys(limits, 0)
    upto = dict.fromkeys(limits, 0)
    open_ = set(limits)
    for last_seq, source, size in runs_newest_first:
        if source not in open_:
            continue
        if held[source] >= limits[source]:
            upto[source] = last_seq
            open_.discard(source)
            if not open_:
                break
        held[source] += size
    return upto


def delivered_upto(topic: str, cursors: Mapping[str, int],
                   sinks: Mapping[str, re.Pattern[str]]) -> tuple[int | None, str | None]:
    """The highest seq of `topic` every consumer that may read it is done with, and the consumer at it.

    (None, None) when no consumer may read the topic. Configured sinks count when their pattern matches
    (at cursor 0 if they never ran); a cursor of a consumer not in `sinks` counts for every topic."""
    low: int | None = None
    who: str | None = None
    readers = [(name, cursors.get(name, 0)) for name, pattern in sinks.items() if pattern.fullmatch(topic)]
    readers += [(name, seq) for name, seq in cursors.items() if name not in sinks]
    for name, seq in readers:
        if low is None or seq < low:
            low, who = seq, name
    return low, who


def plan(topics: Mapping[int, str], policies: Mapping[str, RetentionPolicy], age: Mapping[str, int],
         size: Mapping[str, int], cursors: Mapping[str, int], sinks: Mapping[str, re.Pattern[str]],
         removed: Mapping[int, int]) -> tuple[list[TopicCut], dict[str, int]]:
    """The topics with something to remove, and the consumers that kept what retention would remove.

    `topics` id -> name; `age` / `size` source -> `age_upto` / `size_upto` (missing: no limit);
    `cursors` consumer -> committed cursor; `removed` topic id -> highest seq already removed."""
    cuts: list[TopicCut] = []
    pinned: dict[str, int] = {}
    for topic_id, topic in sorted(topics.items()):
        source = owner(topic, policies)
        if source is None:
            continue
        allowed = max(age.get(source, 0), size.get(source, 0))
        done = removed.get(topic_id, 0)
        if allowed <= done:
            continue
        low, who = delivered_upto(topic, cursors, sinks)
        upto = allowed if low is None else min(allowed, low)
        if who is not None and low is not None and low < allowed:
            pinned[who] = low
        if upto > done:
            cuts.append(TopicCut(topic_id, topic, source, upto))
    return cuts, pinned


# -- the task ---------------------------------------------------------------------------------------

def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    for unit, scale in (("KiB", 1 << 10), ("MiB", 1 << 20)):
        if n < scale << 10:
            return f"{n / scale:.1f} {unit}"
    return f"{n / (1 << 30):.1f} GiB"


def _report(result: PruneResult, pinned_before: Mapping[str, int], sinks: Mapping[str, re.Pattern[str]]) -> None:
    if result.records:
        log.info("journal retention: removed %d records (%s); oldest record now seq %s; %s free in the journal "
                 "file for new records", result.records, _size(result.bytes), result.oldest, _size(result.free_bytes))
    # A pinned journal grows until the disk is full: say so when it starts, not every interval.
    for consumer, seq in result.pinned.items():
        if consumer not in pinned_before:
            why = ("it is not among this run's sinks: if it was removed, release it with "
                   f"`cdc offsets delete {consumer}`") if consumer not in sinks else (
                "it has not run yet" if seq == 0 else "it is behind")
            log.warning("journal retention: records older than their source's retention are kept because sink %s "
                        "has only done up to seq %d (%s)", consumer, seq, why)


Connectors = tuple[Mapping[str, RetentionPolicy], Mapping[str, re.Pattern[str]]]


async def retention_loop(journal_path: Path, connectors: Callable[[], Connectors],
                         interval_s: float = DEFAULT_INTERVAL_S,
                         on_pruned: Callable[[PruneResult], None] | None = None) -> None:
    """Prune the journal now and every `interval_s` seconds until cancelled.

    `connectors()` gives, at each round, the sources' policies (name -> policy, `policies_of`) and every
    configured sink (name -> topic pattern, `sink_topics`): connectors come and go while a run lasts.
    Runs on its own connection, in a worker thread. `on_pruned` sees every result (metrics). A round
    in which every policy keeps everything does nothing."""
    # Imported here: cdc.journal.sqlite imports this module's policy types.
    from cdc.journal.sqlite import SqliteJournal

    journal = await asyncio.to_thread(SqliteJournal, journal_path)
    pinned: Mapping[str, int] = {}
    try:
        while True:
            policies, sinks = connectors()
            if not all(p.keeps_everything for p in policies.values()):
                try:
                    result = await asyncio.to_thread(journal.prune, policies, sinks, time.time_ns() // 1_000_000)
                except Transient as e:
                    log.warning("journal retention: %s; trying again in %.0f s", e, interval_s)
                else:
                    _report(result, pinned, sinks)
                    pinned = result.pinned
                    if on_pruned is not None:
                        on_pruned(result)
            await asyncio.sleep(interval_s)
    finally:
        await asyncio.to_thread(journal.close)
