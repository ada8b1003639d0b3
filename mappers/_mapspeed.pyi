from collections.abc import Callable
from typing import Any

def match(value: bytes, template: tuple[int, int, int, int, int, tuple[Any, ...]],
          /) -> tuple[int, int, str] | None: ...
def typed_write(state: list[Any], slow: Callable[[dict[str, Any], str, str, bytes, bytes], tuple[str, str, bytes]],
                source: dict[str, Any], op: str, subject: str, subject_json: bytes, data_json: bytes,
                /) -> tuple[str, str, bytes]: ...
