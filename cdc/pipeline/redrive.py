"""Redrive: send dead letters to their target again (`cdc dlq retry`), in key order.

Entries are sent oldest first (journal seq), batched like live delivery (one route per request, a
business key at most once per request). A key whose entry fails again -- rejected, or still failing
after `attempts` tries with backoff -- blocks that key's later entries in this run, so a key's records
never reach the target out of order. Delivered entries become ``delivered``; failed ones keep
``pending`` with their attempts, last failure and the target's new answer. Entries a mapping could not
evaluate (type ``mapping.failed``) hold a change, not a business event: they are skipped; fix the
mapping and replay the sink instead.

Failure story: a `Permanent` error of the sink (bad credentials) ends the run with what was done so
far recorded; `Transient` ones count as a failed attempt of every entry in the batch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field, replace

from cdc.errors import Transient
from cdc.journal.deadletters import DeadLetter, now_ms
from cdc.journal.sqlite import JournalReader
from cdc.pipeline.breaker import retry_delay
from cdc.pipeline.lanes import take_batch
from cdc.types import Outcome, OutcomeKind, Sink, SinkEvent, parse_sink_event

__all__ = ["RedriveResult", "redrive"]


@dataclass
class RedriveResult:
    delivered: list[DeadLetter] = field(default_factory=list)
    failed: list[DeadLetter] = field(default_factory=list)   # updated with the new answer
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)  # and why


async def _send(sink: Sink, batch: list[SinkEvent], attempts: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for attempt in range(1, attempts + 1):
        try:
            outcomes = list(await sink.deliver(batch))
        except Transient as e:
            outcomes = [Outcome(OutcomeKind.RETRY, error=str(e))] * len(batch)
        retry = [o.retry_after or 0.0 for o in outcomes if o.kind is OutcomeKind.RETRY]
        if not retry or attempt == attempts:
            break
        await asyncio.sleep(retry_delay(attempt, max(retry), cap=10.0))
    return outcomes


async def redrive(writer: JournalReader, sink: Sink, letters: list[DeadLetter], attempts: int = 3) -> RedriveResult:
    """Re-send `letters` (pending entries of this sink's connector) and record what became of them."""
    result = RedriveResult()
    by_id: dict[str, DeadLetter] = {}
    queue: deque[SinkEvent] = deque()
    for letter in sorted(letters, key=lambda d: (d.seq, d.id)):
        if letter.type == "mapping.failed":
            result.skipped.append((letter, "a change the mapping could not evaluate: fix the mapping and replay"))
            continue
        by_id[letter.event_id] = letter
        queue.append(parse_sink_event(letter.seq, letter.event))
    blocked: set[str] = set()
    await sink.open()
    try:
        while queue:
            _, batch = take_batch(queue, sink.route, sink.max_batch_records, sink.max_batch_bytes, sink.batch_limit)
            for e in batch:
                if e.subject in blocked:
                    result.skipped.append((by_id[e.id], "an older entry of this key failed again in this run"))
            batch = [e for e in batch if e.subject not in blocked]
            if not batch:
                continue
            outcomes = await _send(sink, batch, attempts)
            t = now_ms()
            for e, o in zip(batch, outcomes, strict=True):
                letter = by_id[e.id]
                if o.kind is OutcomeKind.DELIVERED:
                    result.delivered.append(letter)
                else:
                    blocked.add(e.subject)
                    result.failed.append(replace(letter, status=o.status, error=o.error or f"HTTP {o.status}",
                                                 attempts=1, last_failure_ms=t))
    finally:
        await sink.close()
        await asyncio.to_thread(writer.update_dead_letters, result.failed, [d.id for d in result.delivered])
    return result
