from collections.abc import Mapping

from cdc.readers.pgfast import Encoded, Spec
from cdc.readers.pgoutput import Change

def decode_change(buf: bytes | memoryview, in_stream: bool, unchanged: object, /) -> Change | None: ...
def encode_change(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec], /) -> Encoded | None: ...
