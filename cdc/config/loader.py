"""Loading connector files: JSON in Kafka Connect's shapes -> validated connector models.

Role: `load_connectors` reads each file, accepts the three shapes Kafka Connect users already have —
the REST create shape ``{"name": ..., "config": {...}}`` (also as ``GET /connectors/{name}`` returns
it, with ``tasks`` and ``type``), a JSON list of those, or a flat config with ``name`` inside (the
``PUT /connectors/{name}/config`` shape) — resolves ``${env:...}`` / ``${file:...:...}`` references,
registers every resolved secret with `SecretsFilter`, picks the model by ``connector.class`` (see
`cdc.config.registry`) and validates. `validate_connector` does the same for one flat config (what
the REST API will receive).

Failure story: nothing is returned unless everything is valid. Every problem in every file — unreadable
files, JSON syntax errors (with line and column), wrong shapes, unknown or unsupported properties, bad
values, unresolvable references, connector names used twice — is collected and raised once as
`ConfigError`, each problem prefixed by the file and the connector (``erp-pg.json: connector 'erp-pg':
property 'snapshot.mode' = 'sometimes' is not one of: ...``). Secret values never appear in them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from cdc.config.providers import Resolver
from cdc.config.registry import ConnectorConfig, canonical_classes, connector_classes
from cdc.config.secrets import SecretsFilter, is_secret_property
from cdc.config.sinks import CONFIG_FILE
from cdc.errors import ConfigError

# Keys Kafka Connect's REST API puts beside "name" and "config" (GET /connectors/{name}).
_REST_EXTRA_KEYS = ("tasks", "type")


def load_connectors(paths: Sequence[Path]) -> list[ConnectorConfig]:
    """Every connector defined in `paths`, in file order; raises `ConfigError` listing all problems."""
    resolver = Resolver()
    problems: list[str] = []
    loaded: list[ConnectorConfig] = []
    defined_in: dict[str, str] = {}
    for path in paths:
        label = str(path)
        doc = _read_json(Path(path), label, problems)
        if doc is _UNREADABLE:
            continue
        entries = doc if isinstance(doc, list) else [doc]
        for index, entry in enumerate(entries, start=1):
            where = f"{label}: connector #{index}" if isinstance(doc, list) else f"{label}:"
            name, config = _connector_entry(entry, where, problems)
            if name is None or config is None:
                continue
            prefix = f"{label}: connector '{name}': "
            if name in defined_in:
                problems.append(f"{prefix}the name is already used by a connector in {defined_in[name]}")
            else:
                defined_in[name] = label
            token = CONFIG_FILE.set(Path(path))  # relative paths in a connector are relative to its file
            try:
                model, found = _validate(config, resolver)
            finally:
                CONFIG_FILE.reset(token)
            problems.extend(prefix + p for p in found)
            if model is not None:
                loaded.append(model)
    if problems:
        raise ConfigError([SecretsFilter.redact(p) for p in problems])
    return loaded


def validate_connector(config: Mapping[str, Any]) -> ConnectorConfig:
    """One flat connector config (``name`` inside) -> its model; raises `ConfigError` with all problems."""
    name = config.get("name")
    prefix = f"connector '{name}': " if isinstance(name, str) and name else ""
    model, problems = _validate(dict(config), Resolver())
    if model is None:
        raise ConfigError([SecretsFilter.redact(prefix + p) for p in problems])
    return model


_UNREADABLE = object()


def _read_json(path: Path, label: str, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{label}: cannot be read: {exc.strerror or type(exc).__name__}")
        return _UNREADABLE
    except UnicodeDecodeError as exc:
        problems.append(f"{label}: is not UTF-8 text (byte {exc.start})")
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        return _UNREADABLE


def _connector_entry(entry: Any, where: str, problems: list[str]) -> tuple[str | None, dict[str, Any] | None]:
    """(name, flat config with "name" in it) from one entry of a file, or (None, None) after a problem."""
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a JSON object ({{\"name\": ..., \"config\": {{...}}}} or a flat "
                        f"config with \"name\"), not {_json_kind(entry)}")
        return None, None
    if "config" in entry:
        config = entry["config"]
        if not isinstance(config, dict):
            problems.append(f"{where} 'config' must be a JSON object, not {_json_kind(config)}")
            return None, None
        extra = [k for k in entry if k not in ("name", "config", *_REST_EXTRA_KEYS)]
        if extra:
            problems.append(f"{where} unexpected key '{extra[0]}' beside 'name' and 'config' (did you mean "
                            f"to put it inside 'config'?)")
        outer, inner = entry.get("name"), config.get("name")
        if outer is not None and inner is not None and outer != inner:
            problems.append(f"{where} the name inside 'config' ({inner!r}) does not match the connector "
                            f"name ({outer!r})")
            return None, None
        name = outer if outer is not None else inner
        config = dict(config)
    else:
        name = entry.get("name")
        config = dict(entry)
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where} has no connector name (a non-empty string 'name')")
        return None, None
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        problems.append(f"{where} the connector name {name!r} contains control characters")
        return None, None
    config["name"] = name
    return name, config


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "an object"


def _validate(config: dict[str, Any], resolver: Resolver) -> tuple[ConnectorConfig | None, list[str]]:
    resolved, problems = resolver.resolve_config(config)
    for prop, value in resolved.items():
        if is_secret_property(prop) and isinstance(value, str):
            SecretsFilter.register(value)
    unresolved = [p for p in config if p not in resolved]
    cls_name = resolved.get("connector.class")
    if cls_name is None:
        if "connector.class" not in unresolved:
            problems.append(f"required property 'connector.class' is missing (one of: "
                            f"{', '.join(canonical_classes())})")
        return None, problems
    model_cls = connector_classes().get(str(cls_name).strip())
    if model_cls is None:
        problems.append(f"property 'connector.class' = '{cls_name}' is not one of: "
                        f"{', '.join(canonical_classes())}")
        return None, problems
    model, found = model_cls.validate_properties(resolved, unresolved)
    problems.extend(found)
    if problems or model is None:
        return None, problems
    return cast(ConnectorConfig, model), []
