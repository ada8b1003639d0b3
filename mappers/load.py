"""Attaching a mapping to a sink: mapping file + source connector + live catalog -> `SqlMapper`.

Role: the edge between configuration and the pure mapper. `load_mapper(path, source_cfg, catalog=...)`
reads the mapping, compiles it against the source's catalog (read live with the source's settings
unless given) in the source's dialect and value encodings, checks it against ``mapper.entity``
and ``mapper.key``, and binds it to the source topic of its table. `sink_mapper(sink_cfg, sources)`
does that for a sink connector: the source is the one whose topic for the mapping's table is among
the topics the sink reads.

Failure story: every problem of the mapping is raised at once as `MappingError` (a `ConfigError`,
with file, line and column); a mapping whose table no source of the run captures for this sink is a
`ConfigError` naming the table and the sink's topics. Catalog reads raise classified errors
(`Transient` when the server is unreachable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdc.errors import ConfigError
from mappers.catalog import source_catalog, source_dialect, source_encoding
from mappers.compiler import TYPE_FIELD, CompiledMapping, compile_mapping
from mappers.entities import Entity, check_select_list, entity_named
from mappers.errors import MappingError, Problem, did_you_mean
from mappers.mapper import SqlMapper
from mappers.sqltypes import Catalog

__all__ = ["load_mapper", "sink_mapper", "source_topic"]


def source_topic(source_cfg: Any, compiled: CompiledMapping) -> str:
    """The Debezium topic of the mapping's table: <topic.prefix>.<schema or database>.<table>."""
    return f"{source_cfg.topic_prefix}.{compiled.table.schema}.{compiled.table.name}"


def load_mapper(path: Path, source_cfg: Any, *, name: str, entity: str | None = None, key: Sequence[str] = (),
                catalog: Catalog | None = None) -> SqlMapper:
    """Read, compile and check a mapping for a source; `MappingError` lists every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError([Problem(file, 1, 1, f"cannot be read: {e}")]) from None
    if catalog is None:
        catalog = source_catalog(source_cfg)
    if catalog.dialect != source_dialect(source_cfg):
        raise ConfigError([f"{file}: the catalog is {catalog.dialect}, the source {source_dialect(source_cfg)}"])
    compiled = compile_mapping(text, catalog, file=file, encoding=source_encoding(source_cfg))
    model: type[Entity] | None = None
    problems: list[Problem] = []
    if entity:
        model = entity_named(entity)
        if model is None:
            raise ConfigError([f"{file}: unknown entity '{entity}'"])
        problems += check_select_list(model, [(c.name, c.type, c.line, c.col) for c in compiled.columns],
                                      compiled.dialect, file)
    names = [n for n in compiled.names if n != TYPE_FIELD]
    for k in key:
        if k not in names:
            first = compiled.columns[0]
            problems.append(Problem(file, first.line, first.col, f"mapper.key names '{k}', which the select list "
                                    f"does not{did_you_mean(k, names)}"))
    if not names:
        problems.append(Problem(file, 1, 1, "the select list has no data field"))
    if problems:
        raise MappingError(problems)
    return SqlMapper(compiled, topic=source_topic(source_cfg, compiled), name=name, entity=model, key=tuple(key),
                     connector=str(getattr(source_cfg, "name", "")))


def sink_mapper(sink_cfg: Any, sources: Sequence[Any]) -> SqlMapper | None:
    """The mapper of a sink connector with ``mapper.sql`` (None without one); blocking (reads catalogs)."""
    path = getattr(sink_cfg, "mapper_sql", None)
    if path is None:
        return None
    pattern = sink_cfg.topic_pattern()
    found: list[SqlMapper] = []
    errors: list[MappingError] = []
    for src in sources:
        try:
            mapper = load_mapper(Path(path), src, name=sink_cfg.name, entity=sink_cfg.mapper_entity,
                                 key=sink_cfg.mapper_key)
        except MappingError as e:
            errors.append(e)
            continue
        if pattern.fullmatch(mapper.topic):
            found.append(mapper)
    if len(found) == 1:
        return found[0]
    if not found and errors and len(errors) == len(sources):
        raise errors[0]
    prefix = f"sink '{sink_cfg.name}': mapping {path}: "
    if not found:
        raise ConfigError([prefix + "its table is not captured into any topic this sink reads "
                           f"({pattern.pattern}); check 'topics' / 'topics.regex' and the source's topic.prefix"])
    raise ConfigError([prefix + "its table's topic is read from more than one source ("
                       + ", ".join(m.topic for m in found) + "); give each source its own sink"])
