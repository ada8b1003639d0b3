from collections.abc import Mapping

from cdc.readers.pgfast import Encoded, Spec

def encode_change(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec], /) -> Encoded | None: ...
def envelope(before: bytes | None, after: bytes | None, head: bytes, lsn: int, mid: bytes, names: bytes,
             end: bytes, /) -> bytes: ...
