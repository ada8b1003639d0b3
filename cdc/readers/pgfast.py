"""Row changes straight to Debezium JSON: the per-relation spec for the C encoder, and its Python twin.

`encode_change(buf, in_stream, specs)` takes one replication frame. For a row change of a relation that
has a spec it returns the old/new row images and keys as the JSON bytes the envelope needs, built in C
from the server's text (`_pgspeed.encode_change`) for the common types (integers, text-like, boolean,
numeric in `string` mode, UTC timestamptz). Every other value, and any value outside a fast path's exact
shape, goes through the `pgtypes` converter and orjson, so the bytes are the same as the dict path's:
`encode_change_py` computes them that way and the unit tests compare the two. A tuple holding an
unchanged-TOAST marker is not encoded (status 2): the reader takes the dict path, which fills it in.

`encode_part` goes one step further for the usual change (no TOAST value to remember, no primary-key
change, not skipped, not in an open incremental-snapshot chunk): it returns the parts tuple the reader
buffers, so that the stream loop does no per-change Python work beyond appending it; otherwise it
returns what `encode_change` does (`encode_part_py` is its twin).

No I/O. A value a converter rejects raises ValueError naming the column.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import orjson

from cdc.readers.pgoutput import UNCHANGED_TOAST, decode_change
from cdc.readers.pgtypes import EncodingModes, TypeInfo, converter_for, identity

C_NUMBER, C_STRING, C_BOOL, C_DECIMAL, C_TSTZ6, C_FALLBACK = range(6)
# encode_change's status (the last item of its result)
ENCODED, NOT_CAPTURED, UNCHANGED_TOAST_INSIDE = range(3)
INT_OIDS = frozenset({20, 21, 23, 26})

# Where a relation's changes go, for encode_part: (topic, schema, table, remember_from, skipped ops) --
# a new image whose longest value has at least remember_from bytes takes the reader's TOAST path.
Route = tuple[str, str, str, int, str]
NO_ROUTE: Route = ("", "", "", 0, "cud")   # encode_part never decides alone
NEVER = 1 << 32    # remember_from for a relation without TOAST-able columns (a value is < 4 GiB)
# (labels, codes, convs, included indexes, key indexes, dumps, route)
Spec = tuple[tuple[bytes, ...], tuple[int, ...], tuple[Callable[[str], Any], ...], tuple[int, ...],
             tuple[int, ...], Callable[[Any], bytes], Route]
# (xid, op, topic, schema, table, key, before, after, lsn): pgevents.Parts with JSON rows
Part = tuple[int, str, str, str, str, bytes | None, bytes | None, bytes | None, int]
# (tag, wal_start, xid, rel_oid, old_kind, old_json, new_json, old_key, new_key, old_key_complete,
#  longest, status)
Encoded = tuple[int, int, int | None, int, str | None, bytes | None, bytes | None, bytes | None, bytes | None,
                bool, int, int]


def _base(oid: int, typmod: int, types: Mapping[int, TypeInfo]) -> tuple[int, int]:
    info = types.get(oid)
    for _ in range(16):  # domains over domains, bounded
        if info is None or info.kind != "d":
            break
        oid, typmod = info.base_oid, info.base_typmod
        info = types.get(oid)
    return oid, typmod


def row_spec(columns: Sequence[tuple[str, int, int]], include: Collection[str], key_columns: Sequence[str],
             types: Mapping[int, TypeInfo], modes: EncodingModes, route: Route = NO_ROUTE) -> Spec:
    """The encoder's view of one relation (pgoutput column order)."""
    codes: list[int] = []
    convs: list[Callable[[str], Any]] = []
    for _name, oid, typmod in columns:
        conv = converter_for(oid, typmod, modes, types)
        base, base_mod = _base(oid, typmod, types)
        if base in INT_OIDS:
            code = C_NUMBER
        elif conv is identity:
            code = C_STRING
        elif base == 16:
            code = C_BOOL
        elif base == 1700 and modes.decimal == "string":
            code = C_DECIMAL
        elif base == 1184 and base_mod in (-1, 6):
            code = C_TSTZ6
        else:
            code = C_FALLBACK
        codes.append(code)
        convs.append(conv)
    index = {n: i for i, (n, _, _) in enumerate(columns)}
    labels = tuple(orjson.dumps(n) + b":" for n, _, _ in columns)
    included = tuple(i for i, (n, _, _) in enumerate(columns) if n in include)
    return (labels, tuple(codes), tuple(convs), included, tuple(index[k] for k in key_columns), orjson.dumps, route)


def _object(values: Sequence[Any], which: Sequence[int], spec: Spec) -> bytes:
    labels, _, convs, _, _, dumps, _ = spec
    parts = []
    for i in which:
        v = values[i]
        try:
            js = b"null" if v is None else dumps(convs[i](v) if type(v) is str else v)
        except (ValueError, TypeError, ArithmeticError) as e:
            raise ValueError(f"column {labels[i][:-1].decode()}: cannot encode value: {e}") from e
        parts.append(labels[i] + js)
    return b"{" + b",".join(parts) + b"}"


def encode_change_py(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec]) -> Encoded | None:
    """Pure-Python twin of `_pgspeed.encode_change` (used where the extension is not built)."""
    ch = decode_change(buf, in_stream, UNCHANGED_TOAST)
    if ch is None:
        return None
    tag, lsn, xid, rel, old_kind, old, new, longest = ch
    spec = specs.get(rel)
    if spec is None:
        return (tag, lsn, xid, rel, old_kind, None, None, None, None, False, longest, NOT_CAPTURED)
    ncols = len(spec[1])
    for t in (old, new):
        if t is not None and len(t) != ncols:
            raise ValueError(f"pgoutput: tuple has {len(t)} columns, the relation {ncols}")
    if (new is not None and UNCHANGED_TOAST in new) or (old is not None and UNCHANGED_TOAST in old):
        return (tag, lsn, xid, rel, old_kind, None, None, None, None, False, longest, UNCHANGED_TOAST_INSIDE)
    included, keys = spec[3], spec[4]
    new_js = None if new is None else _object(new, included, spec)
    old_js = None if old is None else _object(old, included, spec)
    new_key = None if new is None or not keys else _object(new, keys, spec)
    old_key = None if old is None or not keys else _object(old, keys, spec)
    complete = old_key is not None and all(old[i] is not None for i in keys)  # type: ignore[index]
    return (tag, lsn, xid, rel, old_kind, old_js, new_js, old_key, new_key, complete, longest, ENCODED)


_OPS = {73: "c", 85: "u", 68: "d"}


def encode_part_py(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec], tx_xid: int,
                   chunk_rel: int) -> Part | Encoded | None:
    """Pure-Python twin of `_pgspeed.encode_part`."""
    enc = encode_change_py(buf, in_stream, specs)
    if enc is None or enc[11] != ENCODED or enc[3] == chunk_rel:
        return enc
    tag, lsn, xid, rel, _, old_js, new_js, old_key, new_key, complete, longest, _ = enc
    topic, schema, table, remember_from, skipped = specs[rel][6]
    op = _OPS[tag]
    if op in skipped or (op == "u" and complete and old_key != new_key) or (
            new_js is not None and longest >= remember_from):
        return enc
    return (xid or tx_xid, op, topic, schema, table, old_key if op == "d" else new_key, old_js, new_js, lsn)


encode_change: Callable[[bytes | memoryview, bool, Mapping[int, Spec]], Encoded | None]
encode_part: Callable[[bytes | memoryview, bool, Mapping[int, Spec], int, int], Part | Encoded | None]
try:
    from cdc.readers._pgspeed import encode_change as _c_encode_change
    from cdc.readers._pgspeed import encode_part as _c_encode_part

    encode_change, encode_part = _c_encode_change, _c_encode_part
except ImportError:  # the optional C extension was not built: same bytes, slower
    encode_change, encode_part = encode_change_py, encode_part_py
