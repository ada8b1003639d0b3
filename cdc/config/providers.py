"""Kafka Connect config providers: ``${env:NAME}`` and ``${file:/path/to/file.properties:key}``.

Role: before a connector config is validated, every string value is scanned for references of Kafka's
form ``${provider:[path:]key}`` (Kafka's `ConfigTransformer` pattern, so the first ``:`` after the
provider ends the path) and each is replaced by what its provider supplies, also when the reference
is embedded in a longer string. Two providers exist, always enabled (Kafka Connect needs them declared
in the worker's ``config.providers``; we have no worker file):

- ``env``: the process environment, like Kafka's `EnvVarConfigProvider` (``${env:NAME}``).
- ``file``: a Java-properties file, like Kafka's `FileConfigProvider` (``${file:/run/x.properties:key}``):
  ``key=value``, ``key: value`` or ``key value`` lines, ``#``/``!`` comments, backslash continuations
  and escapes. Relative paths are relative to the process working directory. Each file is read once
  per `Resolver`.

Failure story: a missing variable, an unreadable file, a key not in the file, or an unknown provider
is a problem string naming the property and the reference (``${env:ERP_PG_PASSWORD} is not set``),
never the resolved value, and the property is left out of the resolved config; all problems of all
values are returned together. Unlike Kafka, an unknown provider is an error rather than a reference
silently left in place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Kafka's ConfigTransformer.DEFAULT_PATTERN: ${provider:[path:]key}
REFERENCE = re.compile(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}")

PROVIDERS = ("env", "file")


class _Unresolvable(Exception):
    pass


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java-properties text the way `java.util.Properties.load` does (keys and values as text)."""
    result: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        # Join continuation lines: a line ending in an odd number of backslashes continues.
        while _continues(line) and i < len(lines):
            line = line[:-1] + lines[i].lstrip(" \t\f")
            i += 1
        if _continues(line):
            line = line[:-1]
        key, value = _split_entry(line)
        result[_unescape(key)] = _unescape(value)
    return result


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_entry(line: str) -> tuple[str, str]:
    j = 0
    while j < len(line):
        c = line[j]
        if c == "\\":
            j += 2
            continue
        if c in "=: \t\f":
            break
        j += 1
    key = line[:j]
    # The separator is whitespace, '=' or ':', or whitespace followed by one '=' or ':'.
    rest = line[j:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out: list[str] = []
    j = 0
    while j < len(s):
        c = s[j]
        if c != "\\" or j + 1 >= len(s):
            out.append(c)
            j += 1
            continue
        n = s[j + 1]
        if n == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[j + 2 : j + 6]):
            out.append(chr(int(s[j + 2 : j + 6], 16)))
            j += 6
            continue
        out.append(_ESCAPES.get(n, n))
        j += 2
    return "".join(out)


class Resolver:
    """Resolves provider references in config values; caches each properties file it reads."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self._files: dict[str, dict[str, str] | str] = {}  # path -> properties, or why unreadable

    def resolve_config(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Resolve every string value; returns the resolved config and the problems found.

        A property whose references cannot all be resolved is left out of the result (so that it is
        not also reported as, say, missing or malformed) and gets one problem per bad reference.
        """
        resolved: dict[str, Any] = {}
        problems: list[str] = []
        for prop, value in config.items():
            if not isinstance(value, str) or "${" not in value:
                resolved[prop] = value
                continue
            value_problems: list[str] = []
            new = self.resolve_value(prop, value, value_problems)
            if value_problems:
                problems.extend(value_problems)
            else:
                resolved[prop] = new
        return resolved, problems

    def resolve_value(self, prop: str, value: str, problems: list[str]) -> str:
        """`value` with its references replaced; appends a problem per unresolvable reference."""

        def substitute(m: re.Match[str]) -> str:
            try:
                return self._lookup(m.group(1), m.group(3), m.group(4))
            except _Unresolvable as exc:
                problems.append(f"property '{prop}': {m.group(0)} {exc}")
                return m.group(0)

        return REFERENCE.sub(substitute, value)

    def _lookup(self, provider: str, path: str | None, key: str) -> str:
        if provider == "env":
            if path:
                raise _Unresolvable("has a path; the env provider takes only a name: ${env:NAME}")
            if not key:
                raise _Unresolvable("names no variable")
            found = self._environ.get(key)
            if found is None:
                raise _Unresolvable("is not set")
            return found
        if provider == "file":
            if not path:
                raise _Unresolvable("names no file; the form is ${file:/path/to/file.properties:key}")
            props = self._properties(path)
            if isinstance(props, str):
                raise _Unresolvable(f"cannot be read: {props}")
            if key not in props:
                raise _Unresolvable(f"names key '{key}', which is not in {path}")
            return props[key]
        raise _Unresolvable(f"uses unknown config provider '{provider}' (supported: {', '.join(PROVIDERS)})")

    def _properties(self, path: str) -> dict[str, str] | str:
        cached = self._files.get(path)
        if cached is None:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                cached = f"{exc.strerror or type(exc).__name__} ({path})"
            except UnicodeDecodeError:
                cached = f"not UTF-8 text ({path})"
            else:
                cached = parse_properties(text)
            self._files[path] = cached
        return cached
