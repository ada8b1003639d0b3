"""Attaching a mapping to a sink: mapping file + source connector + live catalog -> a mapper.

Role: the edge between configuration and the mappers. `load_mapper(path, source_cfg, catalog=...)`
reads the mapping, parses it in the source's dialect and compiles it against the source's catalog
(read live with the source's settings unless given) and value encodings, checks it against
``mapper.entity`` and ``mapper.key``, and binds it to the source topics of its tables. A single-table
mapping becomes a `SqlMapper` (evaluated by the bridge); one with joins, GROUP BY, aggregates or
subqueries a `JoinedMapper` (re-read from the source, `mappers.joined`), which the source also
compiles at load (`RowReader.check`). `sink_mapper(sink_cfg, sources)` does that for a sink
connector: the source is the one whose topics for the mapping's tables are among the topics the sink
reads.

Failure story: every problem of the mapping is raised at once as `MappingError` (a `ConfigError`,
with file, line and column); a mapping whose tables no source of the run captures for this sink is a
`ConfigError` naming the tables and the sink's topics. Catalog reads raise classified errors
(`Transient` when the server is unreachable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlglot import exp

from cdc.errors import ConfigError
from mappers.catalog import source_catalog, source_dialect, source_encoding
from mappers.compiler import TYPE_FIELD, CompiledMapping, compile_mapping, parse_mapping
from mappers.entities import Entity, check_select_list, entity_named
from mappers.errors import MappingError, Problem, did_you_mean
from mappers.joined import JoinedMapper, Route, RowReader, compile_joined, is_multi_table
from mappers.mapper import SqlMapper
from mappers.reread import source_reader
from mappers.sqltypes import Catalog

__all__ = ["load_mapper", "sink_mapper", "source_topic", "uncaptured"]


def source_topic(source_cfg: Any, compiled: CompiledMapping) -> str:
    """The Debezium topic of the mapping's table: <topic.prefix>.<schema or database>.<table>."""
    return f"{source_cfg.topic_prefix}.{compiled.table.schema}.{compiled.table.name}"


def load_mapper(path: Path, source_cfg: Any, *, name: str, entity: str | None = None, key: Sequence[str] = (),
                catalog: Catalog | None = None, reader: RowReader | None = None) -> SqlMapper | JoinedMapper:
    """Read, compile and check a mapping for a source; `MappingError` lists every problem.

    `reader`: how a multi-table mapping reads the source (default: a connection with the source's
    settings, opened on first use)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError([Problem(file, 1, 1, f"cannot be read: {e}")]) from None
    if catalog is None:
        catalog = source_catalog(source_cfg)
    if catalog.dialect != source_dialect(source_cfg):
        raise ConfigError([f"{file}: the catalog is {catalog.dialect}, the source {source_dialect(source_cfg)}"])
    model: type[Entity] | None = None
    if entity:
        model = entity_named(entity)
        if model is None:
            raise ConfigError([f"{file}: unknown entity '{entity}'"])
    stmt = parse_mapping(text, catalog.dialect, file)
    if is_multi_table(stmt):
        return _load_joined(text, stmt, catalog, source_cfg, file=file, name=name, model=model, key=key,
                            reader=reader)
    compiled = compile_mapping(text, catalog, file=file, encoding=source_encoding(source_cfg))
    problems: list[Problem] = []
    if model is not None:
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


def _load_joined(text: str, stmt: exp.Select, catalog: Catalog, source_cfg: Any, *, file: str, name: str,
                 model: type[Entity] | None, key: Sequence[str], reader: RowReader | None) -> JoinedMapper:
    mapping = compile_joined(text, stmt, catalog, file=file, key=key, entity=model,
                             encoding=source_encoding(source_cfg))
    reader = reader if reader is not None else source_reader(source_cfg)
    problems, types = reader.check(mapping)
    if not problems and model is not None and types:
        fields = mapping.fields
        problems = check_select_list(model, [(f.name, None if f.json else t, f.line, f.col)
                                             for f, t in zip(fields, types, strict=False)], catalog.dialect, file,
                                     json_arrays={f.name for f in fields if f.json})
    if problems:
        reader.close()
        raise MappingError(problems)
    topics: dict[str, tuple[Route, ...]] = {}
    for route in mapping.routes:
        topic = f"{source_cfg.topic_prefix}.{route.table.schema}.{route.table.name}"
        topics[topic] = (*topics.get(topic, ()), route)
    return JoinedMapper(mapping, topics=topics, reader=reader, name=name, entity=model,
                        connector=str(getattr(source_cfg, "name", "")))


def uncaptured(mapper: SqlMapper | JoinedMapper, source_cfg: Any) -> list[str]:
    """The mapping's tables the source connector does not capture (its include/exclude lists)."""
    included = getattr(source_cfg, "table_included", None)
    tables = [mapper.compiled.table] if isinstance(mapper, SqlMapper) else list(mapper.mapping.tables)
    return [t.qualified for t in tables if included is not None and not included(t.schema, t.name)]


def sink_mapper(sink_cfg: Any, sources: Sequence[Any]) -> SqlMapper | JoinedMapper | None:
    """The mapper of a sink connector with ``mapper.sql`` (None without one); blocking (reads catalogs)."""
    path = getattr(sink_cfg, "mapper_sql", None)
    if path is None:
        return None
    pattern = sink_cfg.topic_pattern()
    found: list[tuple[SqlMapper | JoinedMapper, Any]] = []
    partly: list[str] = []
    errors: list[MappingError] = []
    for src in sources:
        try:
            mapper = load_mapper(Path(path), src, name=sink_cfg.name, entity=sink_cfg.mapper_entity,
                                 key=sink_cfg.mapper_key)
        except MappingError as e:
            errors.append(e)
            continue
        read = [t for t in sorted(mapper.topics) if pattern.fullmatch(t)]
        if len(read) == len(mapper.topics):
            found.append((mapper, src))
            continue
        if read:
            partly += [t for t in sorted(mapper.topics) if t not in read]
        mapper.close()
    prefix = f"sink '{sink_cfg.name}': mapping {path}: "
    if len(found) == 1:
        mapper, src = found[0]
        missing = uncaptured(mapper, src)
        if missing:
            mapper.close()
            raise ConfigError([prefix + f"source '{src.name}' does not capture {', '.join(missing)} "
                               "(check its table.include.list / table.exclude.list)"])
        return mapper
    if not found and errors and len(errors) == len(sources):
        raise errors[0]
    if not found and partly:
        raise ConfigError([prefix + f"the mapping's tables are also captured into {', '.join(partly)}, which the "
                           f"sink does not read ({pattern.pattern}); check 'topics' / 'topics.regex'"])
    if not found:
        raise ConfigError([prefix + "its table is not captured into any topic this sink reads "
                           f"({pattern.pattern}); check 'topics' / 'topics.regex' and the source's topic.prefix"])
    for m, _ in found:
        m.close()
    raise ConfigError([prefix + "its table's topic is read from more than one source ("
                       + ", ".join(t for m, _ in found for t in sorted(m.topics)) + "); give each source its own sink"])
