from collections.abc import Mapping

from cdc.readers.pgevents import AssembleCtx, Parts
from cdc.readers.pgfast import Encoded, Part, Spec
from cdc.types import ChangeEvent

def encode_change(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec], /) -> Encoded | None: ...
def encode_part(buf: bytes | memoryview, in_stream: bool, specs: Mapping[int, Spec], tx_xid: int, chunk_rel: int,
                /) -> Part | Encoded | None: ...
def assemble_batch(parts: list[Parts], ctx: AssembleCtx, /) -> list[ChangeEvent]: ...
