"""Log positions for `cdc replay` and `cdc offsets`: parsing them, and finding them in the journal.

Role
    An operator names a position the way the source or the journal names it -- ``earliest``,
    ``latest``, ``journal:N``, ``lsn:X/Y``, ``binlog:FILE:POS``, ``gtid:SET``, ``time:ISO-8601`` --
    and `parse_position` turns the text into a `Position` (pure; ValueError with the reason otherwise).
    `find_start` answers "which journal seq does a sink re-deliver first for this position?", reading
    the journal through an open `JournalReader` (read-only: moving the cursor is the caller's job), and
    `describe` says what a journal record corresponds to at the source (for `cdc offsets show`).

Semantics (what Debezium / Kafka Connect users expect)
    * ``journal:N``: re-deliver from seq N on (the cursor becomes N-1). ``earliest``: the oldest record
      still in the journal. ``latest``: nothing (the cursor goes to the journal's end).
    * ``lsn:X/Y`` (or a decimal LSN, as Debezium's ``source.lsn`` prints it): the first record whose
      ``source.lsn`` >= the LSN. ``binlog:FILE:POS``: the first record whose ``(source.file,
      source.pos)`` >= it (files compared by their sequence number, as the server orders them).
      ``gtid:SET``: the first record whose ``source.gtid`` is not contained in SET (MySQL
      ``uuid:1-5:7,...``; MariaDB ``domain-server-seq,...`` as a GTID state: per domain, everything up
      to that seq). ``time:``: the first record whose ``source.ts_ms`` (the commit / binlog event time)
      >= it; ISO-8601 without an offset is UTC, or a number of epoch milliseconds.
    * Records that do not carry the kind of position (another source's kind, tombstones, events
      without `source`) neither match nor stop the search.
    * The start is moved back to the first record of the transaction that holds the first match
      (PostgreSQL: same ``txId`` and ``sequence``; MySQL/MariaDB: same ``gtid``), so a replay never
      begins in the middle of a transaction.

Why a forward scan, not a binary search over seq
    The first matching record is found by reading the journal forward in seq order, in batches, and
    decoding each candidate value. None of the keys is monotonic in journal order in general: the
    journal is in *commit* order, while the LSNs of the changes of concurrent PostgreSQL transactions
    interleave (a transaction that started first and committed last holds lower LSNs than the one
    committed before it); clocks step backwards; several sources share the one seq space; and a MySQL
    source restarted from an older binlog position (`cdc offsets set`) appends older positions again.
    A bisection would silently pick a later start and skip records the operator asked for; the scan
    gives the guarantee that matters for at-least-once -- every record at or after the position is
    re-delivered -- in O(records before the match), in bounded memory (batches of `_BATCH` records):
    the journal reads packed runs by primary key (about 1 µs a record) and orjson decodes an envelope
    in 2-3 µs, so a search through a million records takes about four seconds (measured), for a
    command an operator runs rarely.

Retention
    Nothing is lost silently. Retention (`cdc.journal.retention`) removes each topic's oldest records;
    the journal tells, for the searched topics, the highest seq removed (`JournalReader.removed_upto`,
    also counting every seq below its oldest record). ``journal:N`` at or below it is refused. For a log
    position or a time, the start found is trusted only when some record of the kind AFTER the removed
    ones lies before the position (the journal is in about source order, so the removed records lay
    before it too), or the first such record sits exactly at it; otherwise removed records may have been
    at or after the position, and `find_start` refuses. Either refusal is a `PositionNotFound` naming the
    oldest retained record (its source position and when it was journaled), suggesting ``earliest`` and
    larger `journal.retention.ms` / `journal.retention.bytes`. ``earliest`` is the oldest record still
    retained. A position past every record is refused too (nothing would be re-delivered: a typo, or
    the wrong connector).

Failure story: parse errors are ValueError (the CLI's usage errors, exit 2); `PositionNotFound` is a
`Permanent` (exit 1); SQLite failures come from the reader as `Transient` / `Permanent`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from cdc.errors import Permanent
from cdc.journal.sqlite import JournalReader
from cdc.readers.pgoutput import lsn_to_str, str_to_lsn
from cdc.types import JournalRecord

__all__ = ["KINDS", "GtidSet", "Position", "PositionNotFound", "describe", "find_start", "first_seq",
           "parse_position", "record_source"]

Kind = Literal["earliest", "latest", "journal", "lsn", "binlog", "gtid", "time"]
KINDS: tuple[Kind, ...] = ("earliest", "latest", "journal", "lsn", "binlog", "gtid", "time")
# Kinds that name a place in a source's log (the others name a place in the journal).
SOURCE_KINDS = frozenset({"lsn", "binlog", "gtid"})

_ALL = re.compile(".*", re.DOTALL)
_BATCH = 4096
_MARIADB_GTID = re.compile(r"(\d+)-(\d+)-(\d+)")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}")


class PositionNotFound(Permanent):
    """The position is not in the journal: older than what it retains, or past its last record."""


@dataclass(frozen=True, slots=True)
class GtidSet:
    """A MySQL GTID set (``uuid[:tag]:interval[:interval...]`` per source id) or a MariaDB GTID state
    (``domain-server-seq`` per domain), with the containment test of its flavor."""

    text: str
    mariadb: bool
    # MySQL: (uuid lower-case without dashes, tag) -> intervals (first, last); MariaDB: domain -> seq
    intervals: dict[tuple[str, str], tuple[tuple[int, int], ...]] = field(default_factory=dict)
    domains: dict[int, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> GtidSet:
        parts = [p.strip() for p in text.replace("\n", "").split(",") if p.strip()]
        if not parts:
            raise ValueError("an empty GTID set")
        if all(_MARIADB_GTID.fullmatch(p) for p in parts):
            domains: dict[int, int] = {}
            for p in parts:
                d, _, n = (int(x) for x in p.split("-"))
                if d in domains:
                    raise ValueError(f"GTID state {text!r} names domain {d} twice")
                domains[d] = n
            return cls(text, True, domains=domains)
        intervals: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for p in parts:
            uuid, *rest = p.split(":")
            if not _UUID.fullmatch(uuid) or not rest:
                raise ValueError(f"{p!r} is neither a MySQL GTID set entry (uuid:1-5) nor a MariaDB GTID "
                                 "(domain-server-seq)")
            tag = ""
            for item in rest:
                lo, sep, hi = item.partition("-")
                if lo.isdigit() and (not sep or hi.isdigit()):
                    first, last = int(lo), int(hi) if sep else int(lo)
                    if first < 1 or last < first:
                        raise ValueError(f"{item!r} in {p!r} is not an interval of transaction numbers")
                    intervals.setdefault((_norm_uuid(uuid), tag), []).append((first, last))
                elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", item):  # MySQL 8.4 tagged GTIDs
                    tag = item.lower()
                else:
                    raise ValueError(f"{item!r} in {p!r} is not an interval (N or N-M) or a tag")
        return cls(text, False, intervals={k: tuple(v) for k, v in intervals.items()})

    def contains(self, gtid: str) -> bool | None:
        """Whether the set holds this transaction; None if `gtid` is not of this set's flavor."""
        if self.mariadb:
            m = _MARIADB_GTID.fullmatch(gtid)
            if m is None:
                return None
            seq = self.domains.get(int(m[1]))
            return seq is not None and int(m[3]) <= seq
        uuid, *rest = gtid.split(":")
        if not _UUID.fullmatch(uuid) or not rest or not rest[-1].isdigit():
            return None
        number = int(rest[-1])
        tag = rest[0].lower() if len(rest) == 2 else ""
        return any(lo <= number <= hi for lo, hi in self.intervals.get((_norm_uuid(uuid), tag), ()))


def _norm_uuid(uuid: str) -> str:
    return uuid.replace("-", "").lower()


@dataclass(frozen=True, slots=True)
class Position:
    """A parsed position; only the field of its kind is meaningful."""

    kind: Kind
    text: str                 # as the operator wrote it (for messages)
    seq: int = 0              # journal
    lsn: int = 0              # lsn
    file: str = ""            # binlog
    pos: int = 0              # binlog
    gtids: GtidSet | None = None
    ts_ms: int = 0            # time

    @property
    def source_kind(self) -> bool:
        """Whether it names a place in a source's log (and so may be stored as a source offset)."""
        return self.kind in SOURCE_KINDS


def binlog_key(file: str, pos: int) -> tuple[int, int]:
    """How the server orders binlog coordinates: the file's sequence number, then the offset."""
    return int(file.rsplit(".", 1)[-1]), pos


def parse_position(text: str) -> Position:
    """`earliest`, `latest`, `journal:N`, `lsn:X/Y`, `binlog:FILE:POS`, `gtid:SET` or `time:ISO-8601`.

    Raises ValueError with what is wrong and what is accepted."""
    raw = text.strip()
    kind, sep, arg = raw.partition(":")
    kind = kind.lower()
    if kind in ("earliest", "latest") and not sep:
        return Position(kind, raw)  # type: ignore[arg-type]  # narrowed by the test above
    if not sep or kind not in KINDS or kind in ("earliest", "latest") or not arg.strip():
        raise ValueError(f"{text!r} is not a position; use earliest, latest, journal:N, lsn:X/Y, "
                         "binlog:FILE:POS, gtid:SET or time:ISO-8601")
    arg = arg.strip()
    if kind == "journal":
        if not arg.isdigit() or int(arg) < 1:
            raise ValueError(f"journal:{arg}: a journal position is a seq, a whole number >= 1")
        return Position("journal", raw, seq=int(arg))
    if kind == "lsn":
        if arg.isdigit():  # Debezium prints source.lsn as a plain number
            return Position("lsn", raw, lsn=int(arg))
        return Position("lsn", raw, lsn=str_to_lsn(arg))
    if kind == "binlog":
        file, sep, pos = arg.rpartition(":")
        if not sep or not file or not pos.isdigit():
            raise ValueError(f"binlog:{arg}: expected binlog:FILE:POS, e.g. binlog:mysql-bin.000003:4")
        if not file.rsplit(".", 1)[-1].isdigit() or "." not in file:
            raise ValueError(f"binlog:{arg}: {file!r} is not a binlog file name (NAME.NNNNNN)")
        return Position("binlog", raw, file=file, pos=int(pos))
    if kind == "gtid":
        try:
            gtids = GtidSet.parse(arg)
        except ValueError as e:
            raise ValueError(f"gtid:{arg}: {e}") from None
        return Position("gtid", raw, gtids=gtids)
    return Position("time", raw, ts_ms=parse_time(arg))


def parse_time(arg: str) -> int:
    """ISO-8601 (UTC when it has no offset; a trailing Z accepted) or epoch milliseconds -> epoch ms."""
    if arg.isdigit():
        return int(arg)
    try:
        when = dt.datetime.fromisoformat(arg)
    except ValueError:
        raise ValueError(f"time:{arg}: not an ISO-8601 time (e.g. time:2024-05-01T12:00:00Z) nor epoch "
                         "milliseconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


# -- reading the journal ------------------------------------------------------------------------------

def records(reader: JournalReader, after: int = 0,
            topics: re.Pattern[str] | None = None) -> Iterator[JournalRecord]:
    """Every record after seq `after` (of `topics`, if given), in seq order, read in batches."""
    pattern = topics or _ALL
    while batch := reader.read(pattern, after, _BATCH):
        yield from batch
        after = batch[-1].seq


def first_seq(reader: JournalReader, topics: re.Pattern[str] | None = None) -> int | None:
    """The seq of the oldest record still in the journal (of `topics`), None if there is none."""
    found = reader.read(topics or _ALL, 0, 1)
    return found[0].seq if found else None


def record_source(record: JournalRecord) -> dict[str, Any] | None:
    """The Debezium ``source`` block of a record's value; None for a tombstone or another value."""
    if record.value is None:
        return None
    try:
        value = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        return None
    source = value.get("source") if isinstance(value, dict) else None
    return source if isinstance(source, dict) else None


# A key extractor: the record's position of the searched kind from its source block (None: not of
# this kind), and the test "is it at or after the target?".
_Match = Callable[[dict[str, Any]], bool | None]


def _matcher(pos: Position) -> _Match:
    if pos.kind == "lsn":
        def lsn(src: dict[str, Any]) -> bool | None:
            value = src.get("lsn")
            return value >= pos.lsn if isinstance(value, int) and src.get("connector") == "postgresql" else None
        return lsn
    if pos.kind == "binlog":
        target = binlog_key(pos.file, pos.pos)

        def binlog(src: dict[str, Any]) -> bool | None:
            file, offset = src.get("file"), src.get("pos")
            if not isinstance(file, str) or not isinstance(offset, int) or not file:
                return None
            try:
                return binlog_key(file, offset) >= target
            except ValueError:
                return None
        return binlog
    if pos.kind == "gtid":
        assert pos.gtids is not None
        gtids = pos.gtids

        def gtid(src: dict[str, Any]) -> bool | None:
            value = src.get("gtid")
            if not isinstance(value, str):
                return None  # snapshot records and binlogs without GTIDs carry none
            held = gtids.contains(value)
            return None if held is None else not held
        return gtid

    def time(src: dict[str, Any]) -> bool | None:
        value = src.get("ts_ms")
        return value >= pos.ts_ms if isinstance(value, int) else None
    return time


def _transaction(src: dict[str, Any]) -> tuple[object, ...] | None:
    """What identifies the source transaction a record belongs to, None when the record cannot tell."""
    if src.get("connector") == "postgresql":
        # Debezium's `sequence` is '["<previous commit LSN>","<this change's LSN>"]': the first half is
        # shared by the whole transaction (and tells apart transactions whose txId wrapped around).
        sequence = src.get("sequence")
        previous = sequence.partition(",")[0] if isinstance(sequence, str) else None
        return ("pg", src.get("name"), src.get("txId"), previous)
    gtid = src.get("gtid")
    return ("binlog", src.get("name"), gtid) if isinstance(gtid, str) else None


_RAISE = "raise journal.retention.ms / journal.retention.bytes on the source connector to reach further back"


def find_start(reader: JournalReader, pos: Position, topics: re.Pattern[str] | None = None) -> int:
    """The first journal seq to deliver for `pos` (the cursor becomes one less).

    `topics` restricts the search to a sink's topics. ``latest`` returns the journal's end + 1.
    Raises `PositionNotFound` when the position is older than the journal retains, or past its end."""
    end = reader.end_seq()
    if pos.kind == "latest":
        return end + 1
    if pos.kind == "earliest":
        first = first_seq(reader, topics)
        return first if first is not None else end + 1
    # Every record of these topics up to `removed` is gone (0: none was removed).
    removed = reader.removed_upto(topics)
    if pos.kind == "journal":
        if pos.seq > end + 1:
            raise PositionNotFound(f"{pos.text} is past the journal's end (its last seq is {end})")
        if pos.seq <= removed:
            after = reader.read(topics or _ALL, removed, 1)
            oldest = after[0].seq if after else end + 1
            detail = f" (seq {oldest} is {_brief_at(reader, after[0])})" if after else ""
            raise PositionNotFound(f"{pos.text} is older than the journal retains: its oldest record is seq "
                                   f"{oldest}; use --from earliest (or journal:{oldest}) to re-deliver everything "
                                   f"it still holds{detail}, or {_RAISE} next time")
        return pos.seq
    match = _matcher(pos)
    first_of_kind: JournalRecord | None = None
    before = 0  # the last record of the kind found before the position
    tx: tuple[object, ...] | None = None
    tx_start = 0
    for record in records(reader, 0, topics):
        src = record_source(record)
        if src is None:
            continue  # a tombstone follows its delete: same transaction, nothing to judge
        hit = match(src)
        key = _transaction(src)
        if key is None or key != tx:
            tx, tx_start = key, record.seq
        if hit is None:
            continue
        first_of_kind = first_of_kind or record
        if not hit:
            before = record.seq
            continue
        if removed and before <= removed and not (record.seq > removed and _exact(pos, src)):
            # No record of the kind after the removed ones lies before the position: some of the
            # removed records may have been at or after it.
            raise PositionNotFound(
                f"{pos.text} is older than the journal retains: its oldest record of that kind is seq "
                f"{first_of_kind.seq} ({_brief_at(reader, first_of_kind)}); use --from earliest to re-deliver "
                f"everything it still holds, or {_RAISE} next time")
        return tx_start if key is not None else record.seq
    seen_kind = first_of_kind is not None
    what = "no record" if not seen_kind else "no record at or after it"
    kind = {"lsn": "PostgreSQL", "binlog": "MySQL/MariaDB", "gtid": "MySQL/MariaDB with GTIDs"}.get(pos.kind)
    hint = f" (the journal holds no {kind} change events{' of these topics' if topics else ''})" \
        if not seen_kind and kind else ""
    raise PositionNotFound(f"{pos.text}: {what} in the journal (it ends at seq {end}){hint}")


def _exact(pos: Position, src: dict[str, Any]) -> bool:
    """Whether the record sits exactly at the position (then nothing before it can be missing)."""
    if pos.kind == "lsn":
        return bool(src.get("lsn") == pos.lsn)
    if pos.kind == "binlog":
        return bool(src.get("file") == pos.file and src.get("pos") == pos.pos)
    if pos.kind == "time":
        return bool(src.get("ts_ms") == pos.ts_ms)
    return False


def _brief_at(reader: JournalReader, record: JournalRecord) -> str:
    """What a record is at the source, and when it was journaled: for retention refusals."""
    where = [f"{k} {v}" for k, v in describe(record_source(record)).items()]
    at = reader.journaled_at(record.seq)
    if at is not None:
        where.append(f"journaled at {format_ms(at)}")
    return ", ".join(where) or record.topic


def describe(src: dict[str, Any] | None) -> dict[str, str]:
    """A record's source position, readably: PostgreSQL lsn (X/Y), txId; binlog file:pos, row, gtid;
    and the source time (UTC)."""
    if src is None:
        return {}
    out: dict[str, str] = {}
    if src.get("connector") == "postgresql" and isinstance(src.get("lsn"), int):
        out["lsn"] = lsn_to_str(src["lsn"])
        if src.get("txId") is not None:
            out["txId"] = str(src["txId"])
    elif isinstance(src.get("file"), str) and src.get("file"):
        out["binlog"] = f"{src['file']}:{src.get('pos')}"
        if src.get("row") is not None:
            out["row"] = str(src["row"])
        if src.get("gtid"):
            out["gtid"] = str(src["gtid"])
    if src.get("snapshot") not in (None, "false", False):
        out["snapshot"] = str(src["snapshot"])
    if isinstance(src.get("ts_ms"), int):
        out["time"] = format_ms(src["ts_ms"])
    return out


def format_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC (millisecond precision, trailing Z)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
