"""Which configuration values are secrets, and how they are kept out of every output.

Role: one rule decides which property names hold secrets (`is_secret_property`); `masked` replaces their
values by ``********`` in any config mapping before it is shown (status output, REST API, errors);
`SecretsFilter` redacts the resolved secret values themselves from log records, whatever logged them.

Failure story: a secret can leak in three ways, and each has its guard. (1) A config dump or error
message quotes a value: models keep secrets as pydantic `SecretStr`, dumps and messages go through
`masked`/`mask_value`. (2) Someone logs a string that happens to contain the password (a conninfo, a
driver's error text): the loader registers every resolved secret with `SecretsFilter`, which replaces
it wherever it appears in a record. (3) A secret is stored under a property name the rule does not
recognise: it is shown like any other value; extend `is_secret_property` rather than special-casing.

`SecretsFilter` must sit on the *handlers* (``SecretsFilter.install()`` does it for the root logger and
its handlers): logging consults a logger's own filters only for records logged through that very
logger, not for records propagated from child loggers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

MASK = "********"

# Values shorter than this are not redacted from logs: replacing every "abc" in every log line would
# destroy the logs while protecting a password that weak anyway. Such secrets are still masked by name.
MIN_REDACTED_LENGTH = 4

_SECRET_SUFFIXES = ("password", ".key")
_SECRET_PARTS = ("secret", "token", "sasl.jaas.config", "api.key", "apikey", "credentials")
# Names that say where a secret is used, not the secret (an OAuth token endpoint, an API key's header
# name), and keys that are business keys, not cryptographic ones (a mapping's key columns, a Dataverse
# alternate key).
_NOT_SECRET_SUFFIXES = ("token.url", "apikey.header", "mapper.key", "alternate.key")
# Custom HTTP headers (``http.header.NAME``) are secrets when their name suggests a credential.
_HEADER_PREFIX = "http.header."
_SECRET_HEADER = re.compile(r"auth|cookie|credential|key|password|secret|session|signature|token")

# A value made only of config-provider references (`${env:X}`, `${file:/p:k}`) names where a secret
# lives; it is not itself secret, and Kafka Connect shows such references in its REST API too.
_ONLY_REFERENCES = re.compile(r"(?:\$\{[^}]*\})+")


def is_secret_property(name: str) -> bool:
    """True when a property of this name holds a secret (passwords, keys, tokens, credentials)."""
    lower = name.lower()
    if lower.endswith(_NOT_SECRET_SUFFIXES):
        return False
    if lower.startswith(_HEADER_PREFIX):
        return _SECRET_HEADER.search(lower[len(_HEADER_PREFIX):]) is not None
    return lower.endswith(_SECRET_SUFFIXES) or any(part in lower for part in _SECRET_PARTS)


def mask_value(name: str, value: Any) -> Any:
    """The value as it may be shown: ``********`` for secrets (unless only provider references)."""
    if isinstance(value, SecretStr):
        return MASK
    if value is None or value == "" or not is_secret_property(name):
        return value
    if isinstance(value, str) and _ONLY_REFERENCES.fullmatch(value):
        return value
    return MASK


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a connector config (flat or Kafka Connect REST shape) with secret values masked.

    Nested mappings (the REST shape's ``config``) and lists of them are masked recursively; any
    `SecretStr` value is masked whatever its key.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out[key] = masked(value)
        elif isinstance(value, list):
            out[key] = [masked(v) if isinstance(v, Mapping) else mask_value(key, v) for v in value]
        else:
            out[key] = mask_value(key, value)
    return out


class SecretsFilter(logging.Filter):
    """Redacts registered secret values from log records (message, arguments, exception text).

    Secrets are registered process-wide (`register`), typically by the config loader as it resolves
    them; every instance of the filter uses the same registry. The filter never drops a record.
    """

    _secrets: ClassVar[set[str]] = set()
    _ordered: ClassVar[tuple[str, ...]] = ()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def register(cls, value: str | SecretStr | None) -> None:
        """Remember a secret value so that it is redacted from every later log record."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value or len(value) < MIN_REDACTED_LENGTH:
            return
        with cls._lock:
            if value in cls._secrets:
                return
            cls._secrets.add(value)
            # Longest first, so that a secret containing another one is replaced whole.
            cls._ordered = tuple(sorted(cls._secrets, key=len, reverse=True))

    @classmethod
    def redact(cls, text: str) -> str:
        """`text` with every registered secret replaced by ``********``."""
        for secret in cls._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    @classmethod
    def install(cls, logger: logging.Logger | None = None) -> SecretsFilter:
        """Add one filter to `logger` (default: the root logger) and to each of its handlers."""
        target = logger if logger is not None else logging.getLogger()
        flt = cls()
        target.addFilter(flt)
        for handler in target.handlers:
            handler.addFilter(flt)
        return flt

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._ordered:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: redact the parts, let the handler complain
            record.msg = self.redact(str(record.msg))
            if isinstance(record.args, tuple):
                record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        else:
            record.msg = self.redact(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
