"""Typed access to the LZ4 block codec (the `lz4` package ships no type information).

Pure functions, no I/O. Both release the GIL while they work. A corrupt block raises `Permanent`:
the journal file is damaged, which no retry mends.
"""

from __future__ import annotations

from typing import cast

import lz4.block

from cdc.errors import Permanent


def lz4_compress(data: bytes) -> bytes:
    """`data` as one LZ4 block that records its own uncompressed size."""
    return cast(bytes, lz4.block.compress(data, store_size=True))


def lz4_decompress(block: bytes | memoryview) -> bytes:
    """The bytes `lz4_compress` was given."""
    try:
        return cast(bytes, lz4.block.decompress(block))
    except (lz4.block.LZ4BlockError, ValueError, MemoryError) as exc:  # a mangled block, or size header
        raise Permanent(f"journal: a stored run is corrupt ({exc}); restore the journal from a backup "
                        "or delete it and re-snapshot the sources") from exc
