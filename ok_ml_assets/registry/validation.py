"""Checks a data file against its dataset contract with DuckDB, reporting column, rule and rows."""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ok_ml_assets.registry.catalog import NAIVE, ColumnContract, DatasetContract

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ContractViolation:
    """One broken rule: which column, which rule, how many rows and a few examples."""

    column: str
    rule: str
    rows: int
    examples: list

    def __str__(self) -> str:
        return f"column {self.column!r} breaks rule {self.rule}: {self.rows} rows, e.g. {self.examples}"


def _type_matches(declared: str, actual: pa.DataType) -> bool:
    checks = {
        "int64": pa.types.is_integer,
        "float64": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
        "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t),
        "timestamp": pa.types.is_timestamp,
        "date": pa.types.is_date,
        "bool": pa.types.is_boolean,
    }
    return checks[declared](actual)


def read_schema(path: Path) -> pa.Schema:
    """The parquet schema of `path`, or a ValueError saying why it is not a readable parquet file."""
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ValueError(f"{path} is not a readable parquet file: {error}") from None


def _schema_violations(schema: pa.Schema, contract: DatasetContract) -> list[ContractViolation]:
    actual = {field.name: field.type for field in schema}
    found = []
    for name in contract.columns:
        if name not in actual:
            found.append(ContractViolation(name, "column is present", 0, []))
    for name in actual:
        if name not in contract.columns:
            found.append(ContractViolation(name, "column is declared in the contract", 0, []))
    for name, column in contract.columns.items():
        if name in actual and not _type_matches(column.type, actual[name]):
            found.append(ContractViolation(name, f"type is {column.type}", 0, [str(actual[name])]))
        elif name in actual and column.timezone is not None and not _zone_matches(column.timezone, actual[name].tz):
            found.append(ContractViolation(name, _zone_rule(column.timezone), 0, [actual[name].tz or "no time zone (naive)"]))
    return found


def _zone_matches(declared: str, actual: str | None) -> bool:
    """Whether a parquet timestamp's zone is the declared one (`naive`: none); UTC has several spellings."""
    if declared == NAIVE or actual is None:
        return declared == NAIVE and actual is None
    utc = {"UTC", "Etc/UTC", "+00:00", "Z", "utc"}
    return actual == declared or (declared in utc and actual in utc)


def _zone_rule(declared: str) -> str:
    return "timestamps carry no time zone (naive)" if declared == NAIVE else f"timestamps carry the time zone {declared}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str | int) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def _column_rules(name: str, column: ColumnContract) -> list[tuple[str, str]]:
    """(rule, SQL predicate of a failing row) for every value rule of a column."""
    col = _quote(name)
    rules = []
    if not column.nullable:
        rules.append(("not null", f"{col} IS NULL"))
    if column.allowed is not None:
        values = ", ".join(_literal(v) for v in column.allowed)
        rules.append((f"value in {column.allowed}", f"{col} IS NOT NULL AND {col} NOT IN ({values})"))
    if column.min is not None:
        rules.append((f">= {column.min}", f"{col} < {column.min}"))
    if column.max is not None:
        rules.append((f"<= {column.max}", f"{col} > {column.max}"))
    return rules


def _value_violations(con: duckdb.DuckDBPyConnection, contract: DatasetContract) -> list[ContractViolation]:
    rules = [(name, rule, predicate) for name, column in contract.columns.items() for rule, predicate in _column_rules(name, column)]
    if not rules:
        return []
    # One scan counts every rule's failures; examples are fetched only for the rules that failed.
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {predicate})" for _, _, predicate in rules) + " FROM data"
    ).fetchone()
    found = []
    for (name, rule, predicate), rows in zip(rules, counts):
        if rows:
            examples = con.execute(f"SELECT {_quote(name)} FROM data WHERE {predicate} LIMIT {MAX_EXAMPLES}").fetchall()
            found.append(ContractViolation(name, rule, rows, [e[0] for e in examples]))
    return found


def _key_violations(con: duckdb.DuckDBPyConnection, contract: DatasetContract) -> list[ContractViolation]:
    if not contract.primary_key:
        return []
    keys = ", ".join(_quote(c) for c in contract.primary_key)
    # Counting distinct keys is exact and several times cheaper than grouping; group only when there are repeats.
    if not con.execute(f"SELECT count(*) - count(DISTINCT ({keys})) FROM data").fetchone()[0]:
        return []
    rows = con.execute(
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM data GROUP BY {keys} HAVING n > 1)"
    ).fetchone()[0]
    if not rows:
        return []
    examples = con.execute(f"SELECT {keys} FROM data GROUP BY {keys} HAVING count(*) > 1 LIMIT {MAX_EXAMPLES}").fetchall()
    return [ContractViolation(",".join(contract.primary_key), "primary key is unique", int(rows), [list(e) for e in examples])]


def _period_violations(con: duckdb.DuckDBPyConnection, contract: DatasetContract, tag: str | None) -> list[ContractViolation]:
    """Rows of a daily version whose period column falls outside the day its tag names."""
    if contract.period_column is None or tag is None:
        return []
    try:
        day = dt.date.fromisoformat(tag)
    except ValueError:
        return [ContractViolation(contract.period_column, "the tag of a daily version is its day (YYYY-MM-DD)", 0, [tag])]
    zone = contract.columns[contract.period_column].timezone
    # The day of an instant depends on the zone: count it in the dataset's own zone, whatever the machine's is.
    con.execute(f"SET TimeZone = {_literal(zone if zone not in (None, NAIVE) else 'UTC')}")
    predicate = f"CAST({_quote(contract.period_column)} AS DATE) <> DATE '{day.isoformat()}'"
    rows = con.execute(f"SELECT count(*) FROM data WHERE {predicate}").fetchone()[0]
    if not rows:
        return []
    examples = con.execute(f"SELECT {_quote(contract.period_column)} FROM data WHERE {predicate} LIMIT {MAX_EXAMPLES}").fetchall()
    return [ContractViolation(contract.period_column, f"falls on the version's day {day}", int(rows), [str(e[0]) for e in examples])]


@functools.cache
def _database(pid: int) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (a forked child gets its own): opening one costs more than validating a small file."""
    return duckdb.connect()


def validate_file(path: Path, contract: DatasetContract, tag: str | None = None) -> tuple[int, list[ContractViolation]]:
    """Row count of the parquet file at `path` and every way it breaks `contract` (empty when it complies).

    With the version's `tag`, a contract's `period_column` is checked against the day the tag names.
    """
    schema_problems = _schema_violations(read_schema(path), contract)
    rows = pq.ParquetFile(path).metadata.num_rows
    if rows == 0 and not contract.allow_empty:
        return 0, [ContractViolation("*", "file has at least one row (the catalog does not declare allow_empty)", 0, [])]
    if schema_problems or rows == 0:
        return rows, schema_problems
    con = _database(os.getpid()).cursor()
    try:
        con.execute(f"CREATE TEMP VIEW data AS SELECT * FROM read_parquet({_literal(str(path))})")
        return rows, _value_violations(con, contract) + _key_violations(con, contract) + _period_violations(con, contract, tag)
    finally:
        con.close()
