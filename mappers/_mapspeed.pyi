from typing import Any

def match(value: bytes, template: tuple[int, int, int, int, int, tuple[Any, ...]],
          /) -> tuple[int, int, str] | None: ...
