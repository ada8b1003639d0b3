"""Golden files: each bad mapping in tests/unit/fixtures/mappers/*.sql and its exact messages (*.err).

A mapping's first lines may say ``-- dialect: mysql`` (default postgres) and ``-- entity: Customer``;
it is compiled against catalog_<dialect>.sql (planned as a multi-table mapping when it has joins,
aggregates or subqueries). Regenerate after an intended wording change with
``CDC_GOLDEN_UPDATE=1 pytest tests/unit/mappers/test_golden_errors.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mappers.compiler import compile_mapping, parse_mapping
from mappers.entities import check_select_list, entity_named
from mappers.errors import MappingError
from mappers.joined import compile_joined, is_multi_table
from mappers.sqltypes import Catalog, Dialect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mappers"
CASES = sorted(p for p in FIXTURES.glob("*.sql") if not p.name.startswith("catalog_"))


def problems_of(path: Path) -> list[str]:
    text = path.read_text()
    dialect: Dialect = "mysql" if re.search(r"^-- dialect: mysql", text, re.M) else "postgres"
    entity = re.search(r"^-- entity: (\w+)", text, re.M)
    catalog = Catalog.from_ddl((FIXTURES / f"catalog_{dialect}.sql").read_text(), dialect)
    model = entity_named(entity.group(1)) if entity else None
    try:
        stmt = parse_mapping(text, dialect, path.name)
        if is_multi_table(stmt):  # planned as a multi-table mapping, the entity checked with it
            compile_joined(text, stmt, catalog, file=path.name, entity=model)
            return []
        compiled = compile_mapping(text, catalog, file=path.name)
    except MappingError as e:
        return e.problems
    if model is not None:
        found = check_select_list(model, [(c.name, c.type, c.line, c.col) for c in compiled.columns], dialect,
                                  path.name)
        return [str(p) for p in found]
    return []


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_error(path: Path) -> None:
    got = "\n".join(problems_of(path)) + "\n"
    golden = path.with_suffix(".err")
    if os.environ.get("CDC_GOLDEN_UPDATE"):
        golden.write_text(got)
    assert got.strip(), f"{path.name} compiled without problems"
    assert got == golden.read_text()
