"""A MySQL/MariaDB table's definition as the binlog reader needs it: columns, types, primary key.

Role: the shared vocabulary between the DDL parser (`mysqlddl`, which builds and changes these from
`SHOW CREATE TABLE` and from DDL statements in the binlog), the schema history kept in the journal
(serialised with `to_json`/`from_json`), and the row decoder (`binlogrows`, which reads the binlog's
bytes of a row with them). Pure data, no I/O.

Type names are MySQL's base type names in lower case, as `SHOW CREATE TABLE` prints them
(`tinyint`, `int`, `bigint`, `decimal`, `varchar`, `longtext`, `varbinary`, `datetime`, `enum`, ...);
`BOOLEAN` is `tinyint` with length 1, as the server stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """One column. `length`: M of INT(M)/CHAR(M)/VARCHAR(M)/BINARY(M)/BIT(M), the precision of
    DECIMAL(M,D), the fractional-seconds precision of TIME/DATETIME/TIMESTAMP(fsp); None when the
    DDL gives none. `scale`: D of DECIMAL(M,D). `charset`: the column's character set for character
    types (resolved from the table's or database's default when the DDL gives none), else None.
    `values`: the members of an ENUM or SET, in order."""

    name: str
    type: str
    length: int | None = None
    scale: int | None = None
    unsigned: bool = False
    nullable: bool = True
    charset: str | None = None
    values: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "length": self.length, "scale": self.scale,
                "unsigned": self.unsigned, "nullable": self.nullable, "charset": self.charset,
                "values": list(self.values)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnDef:
        return cls(name=d["name"], type=d["type"], length=d.get("length"), scale=d.get("scale"),
                   unsigned=bool(d.get("unsigned")), nullable=bool(d.get("nullable", True)),
                   charset=d.get("charset"), values=tuple(d.get("values") or ()))


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A table's definition at one point of the binlog: columns in table order, primary key names.

    `charset` is the table's default character set (new character columns take it)."""

    db: str
    table: str
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[str, ...] = ()
    charset: str | None = None
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> ColumnDef | None:
        lower = name.lower()
        return next((c for c in self.columns if c.name.lower() == lower), None)

    def to_json(self) -> dict[str, Any]:
        return {"db": self.db, "table": self.table, "columns": [c.to_json() for c in self.columns],
                "primary_key": list(self.primary_key), "charset": self.charset}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TableSchema:
        return cls(db=d["db"], table=d["table"], columns=tuple(ColumnDef.from_json(c) for c in d["columns"]),
                   primary_key=tuple(d.get("primary_key") or ()), charset=d.get("charset"))
