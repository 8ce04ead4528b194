"""Which column of the files is which: canonical columns, features, and what is ignored.

`resolve_columns` reads the files' Arrow schemas (never DuckDB type strings, so struct
fields of any name survive), applies the `[columns]` mapping, and returns every decision
with its reason: a column the product uses, a feature, or an ignored column and why.

Rules (the README's log contract):
- Hive directory keys (`status=ok/`) never override a column the files hold; a key the
  files lack may supply a string column (e.g. `model_version=v9/`).
- Struct columns are flattened: fields of `features` are features by their own name,
  fields of any other struct `meta` are `meta.field`; nested structs get dotted names.
- A feature whose type differs across files is read as the common type, with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ..config import CANONICAL_COLUMNS, Config, did_you_mean
from . import discover
from .discover import LogSourceError
from .sql import cursor, quote_ident, sql_str

FEATURE_PREFIX = "f:"   # the namespace of feature columns in `logs`: no internal column starts so


@dataclass(frozen=True)
class Feature:
    name: str          # the feature's name as users see and configure it (dotted for nested)
    kind: str          # "numeric" | "categorical"
    dtype: str         # DuckDB type
    expr: str          # SQL expression over the raw scan (quoted identifiers only)

    @property
    def col(self) -> str:
        """The feature's column in `logs`, quoted: `"f:<name>"`."""
        return quote_ident(FEATURE_PREFIX + self.name)

# Canonical columns a Hive directory may supply when no file holds them (all strings).
HIVE_SUPPLIED = ("model_name", "model_version", "endpoint", "status", "error_type")


@dataclass
class Resolved:
    columns: dict[str, str | None]
    types: dict[str, str]
    features: list
    warnings: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    exprs: dict[str, str] = field(default_factory=dict)
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    file_col: str = "__mw_file"


def resolve_columns(config: Config, schemas: dict[str, pa.Schema], rows: dict[str, int],
                    con: duckdb.DuckDBPyConnection, *, path: str, reference: bool) -> Resolved:
    mapping = {c: config.columns.get(c, c) for c in CANONICAL_COLUMNS}
    out = Resolved(columns={}, types={}, features=[])
    good = list(schemas)
    # A file is unusable when a column it has cannot be read as the contract says (e.g.
    # latency_ms as a list); a missing column only makes its rows read it as empty.
    for f in list(good):
        reason = _type_problem(schemas[f], mapping)
        if reason:
            out.bad_files.append((f, reason))
            good.remove(f)
    if not good:
        detail = "; ".join(f"{f}: {r}" for f, r in out.bad_files[:3])
        raise LogSourceError(f"no readable log files in {path} ({detail})")

    cur = cursor(con)
    try:
        describe = cur.execute(
            "DESCRIBE SELECT * FROM read_parquet($files, union_by_name=true, hive_partitioning=false)",
            {"files": good}).fetchall()
    except duckdb.Error as exc:
        raise LogSourceError(f"the files under {path} cannot be read together: "
                             f"{str(exc).splitlines()[0][:200]}") from exc
    finally:
        cur.close()
    union_types = {name: typ for name, typ, *_ in describe}
    while out.file_col in union_types:
        out.file_col += "_"
    hive = {f: discover.hive_keys(f) for f in good}
    hive_names = {k for keys in hive.values() for k in keys}

    for canonical in CANONICAL_COLUMNS:
        actual = mapping[canonical]
        if actual in union_types:
            out.columns[canonical] = actual
            out.types[canonical] = union_types[actual]
            if actual in hive_names:
                out.warnings.append(
                    f"directory key {actual}=… is ignored: the files hold a {actual!r} column, "
                    "and a file's own values always win")
            missing_in = [f for f in good if actual not in schemas[f].names]
            if missing_in:
                n = sum(rows[f] for f in missing_in)
                out.warnings.append(
                    f"column {actual!r} is missing in {len(missing_in)} file(s), e.g. "
                    f"{missing_in[0]}: {n} row(s) read it as empty")
        else:
            out.columns[canonical] = None
            if canonical in HIVE_SUPPLIED and actual in hive_names:
                # From the directory name; files outside such a directory read it as empty.
                pattern = r"[/\\]" + re.escape(actual) + r"=([^/\\]+)[/\\]"
                out.exprs[canonical] = f"nullif(regexp_extract({quote_ident(out.file_col)}, {sql_str(pattern)}, 1), '')"
                out.types[canonical] = "VARCHAR"

    ts_type = out.types.get("timestamp", "")
    numeric_ts = ts_type in _NUMERIC or ts_type.startswith("DECIMAL")
    if out.columns["timestamp"] and numeric_ts and not config.timestamp_unit and not reference:
        raise LogSourceError(
            f"column {out.columns['timestamp']!r} holds numbers ({ts_type}): declare their unit in "
            'monitoring.toml, [columns] timestamp_unit = "s", "ms", "us" or "ns"')
    if not out.columns["prediction"] and not reference:
        out.warnings.append(f"column {mapping['prediction']!r} not found: output drift, quality "
                            "and labelling need it (map yours in monitoring.toml [columns])")
    if out.columns["latency_ms"] and out.types.get("latency_ms") not in _NUMERIC:
        out.warnings.append(f"latency_ms has type {out.types['latency_ms']} across files; "
                            "non-numbers count as invalid")

    used = {out.columns[c] for c in CANONICAL_COLUMNS if out.columns[c]}
    candidates = _leaves(good, schemas, union_types, used, hive_names, config, out)
    if candidates:
        exprs = {name: _leaf_sql(leaf, quote_ident, sql_str) for name, leaf in candidates.items()}
        cur = cursor(con)
        try:
            duck = cur.execute(
                "DESCRIBE SELECT " + ", ".join(f"{e} AS {quote_ident('c' + str(i))}"
                                               for i, e in enumerate(exprs.values()))
                + " FROM read_parquet($files, union_by_name=true, hive_partitioning=false)",
                {"files": good}).fetchall()
        finally:
            cur.close()
        for (name, e), row in zip(exprs.items(), duck, strict=True):
            typ = row[1]
            kind = _duck_kind(typ)
            if kind is None:
                out.ignored.append((name, f"type {typ} across files is not a feature type"))
                continue
            out.features.append(Feature(name, kind, typ, e))
    _feature_type_warnings(out, good, schemas, candidates)
    _list_class_scores(config, good, schemas, used, out, quote_ident)
    out.warnings += class_scores(config, [f.name for f in out.features],
                                 [n for n in union_types if n not in used])[1]
    if config.features:
        found = {f.name for f in out.features}
        for name in config.features:
            if name not in found:
                out.warnings.append(f"feature {name!r} listed in monitoring.toml is not in the logs")
    return out


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def _leaves(good, schemas, union_types, used, hive_names, config, out: Resolved) -> dict:
    """Feature name -> (top column, Leaf) for every candidate feature, in file order."""
    first_field: dict[str, pa.Field] = {}
    for f in good:
        for fld in schemas[f]:
            first_field.setdefault(fld.name, fld)
    explicit = set(config.features)
    found: dict[str, tuple[str, discover.Leaf]] = {}
    for name in union_types:
        if name in used:
            continue
        fld = first_field.get(name)
        if fld is None:
            continue
        leaves, ignored = discover.flatten(fld)
        for leaf_name, reason in ignored:
            out.ignored.append((leaf_name, reason))
        for leaf in leaves:
            fname = ".".join(leaf.path[1:]) if name == "features" and len(leaf.path) > 1 else leaf.name
            if explicit and fname not in explicit and not _declared_class_score(config, fname):
                out.ignored.append((fname, "not listed in [columns] features"))
                continue
            if fname in found:
                out.ignored.append((leaf.name, f"same name as the feature {fname!r}, which is kept"))
                continue
            if kind_of(leaf.type) == "null":
                out.ignored.append((fname, "every value is null"))
                continue
            found[fname] = (name, leaf)
    for key in sorted(hive_names - set(union_types)):
        if key not in {config.columns.get(c, c) for c in HIVE_SUPPLIED}:
            out.ignored.append((key, "directory key (key=value folder), not a feature"))
    return found


def kind_of(t: pa.DataType) -> str:
    return discover.kind(t)


def _leaf_sql(item, quote_ident, sql_str) -> str:
    top, leaf = item
    sql = quote_ident(top)
    for part in leaf.path[1:]:
        sql = f"struct_extract({sql}, {sql_str(part)})"
    return sql


def _feature_type_warnings(out: Resolved, good, schemas, candidates) -> None:
    for fname, (top, leaf) in candidates.items():
        if len(leaf.path) > 1:
            continue
        seen: dict[str, int] = {}
        for f in good:
            if top in schemas[f].names:
                t = str(schemas[f].field(top).type)
                seen[t] = seen.get(t, 0) + 1
        if len(seen) > 1 and any(f.name == fname for f in out.features):
            desc = ", ".join(f"{t} in {n} file(s)" for t, n in sorted(seen.items(), key=lambda x: -x[1]))
            typ = next(f.dtype for f in out.features if f.name == fname)
            out.warnings.append(f"feature {fname!r} changes type across files ({desc}): read as {typ}")


def _duck_kind(typ: str) -> str | None:
    if typ in _NUMERIC or typ.startswith("DECIMAL"):
        return "numeric"
    if typ in ("VARCHAR", "BOOLEAN") or typ.startswith("ENUM"):
        return "categorical"
    return None


def _type_problem(schema: pa.Schema, mapping: dict[str, str]) -> str | None:
    def typ(canonical: str) -> pa.DataType | None:
        # An all-null column (Arrow's null type) fits any contract type.
        name = mapping[canonical]
        if name not in schema.names or pa.types.is_null(schema.field(name).type):
            return None
        return schema.field(name).type

    t = typ("timestamp")
    if t is not None and not (pa.types.is_timestamp(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t) or pa.types.is_date(t)
                              or pa.types.is_integer(t) or pa.types.is_floating(t)):
        return f"column {mapping['timestamp']!r} has type {t}, expected a timestamp"
    t = typ("latency_ms")
    if t is not None and not (pa.types.is_integer(t) or pa.types.is_floating(t)
                              or pa.types.is_decimal(t) or pa.types.is_string(t)):
        return f"column {mapping['latency_ms']!r} has type {t}, expected a number of milliseconds"
    t = typ("status")
    if t is not None and not (pa.types.is_integer(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
        return f"column {mapping['status']!r} has type {t}, expected a string or an HTTP code"
    for canonical in ("request_id", "model_version", "model_name", "endpoint", "error_type"):
        t = typ(canonical)
        if t is not None and (pa.types.is_nested(t) or pa.types.is_binary(t)):
            return f"column {mapping[canonical]!r} has type {t}, expected a string"
    return None


# -- per-class probabilities ([columns] class_scores, classes) --------------------------------

@dataclass(frozen=True)
class ClassScore:
    """One class of a multiclass model and the feature column holding its probability."""

    cls: str
    column: str


def _declared_class_score(config: Config, name: str) -> bool:
    spec = config.columns.get("class_scores")
    if not spec:
        return False
    if "*" in spec:
        return re.fullmatch(re.escape(spec).replace(r"\*", ".+"), name) is not None
    return name.startswith(spec + ".")


def class_scores(config: Config, features: list[str],
                 columns: list[str] = ()) -> tuple[list[ClassScore], list[str]]:
    """The per-class probability columns `[columns] class_scores` declares, among the
    features (a struct or list column is already one feature per class, `col.class`), and
    warnings (one sentence each) when the declaration finds fewer than two classes.

    `class_scores = "score_*"`: every feature matching, the class is what `*` stands for;
    `class_scores = "probs"`: the fields of the struct `probs` (or, for a list column, the
    positions named by `classes`). `classes`, when given, keeps those classes in that order.
    """
    spec = config.columns.get("class_scores")
    if not spec:
        return [], []
    wanted = list(config.columns.get("classes") or [])
    found: dict[str, str] = {}
    if "*" in spec:
        pattern = re.compile(re.escape(spec).replace(r"\*", "(.+)"))
        for f in features:
            m = pattern.fullmatch(f)
            if m:
                found.setdefault(m.group(1), f)
    else:
        for f in features:
            if f.startswith(spec + "."):
                found.setdefault(f[len(spec) + 1:], f)
    warnings = []
    if wanted:
        missing = [c for c in wanted if c not in found]
        if missing:
            warnings.append(f"[columns] classes: no probability column for {', '.join(map(repr, missing[:5]))} "
                            f"under class_scores = {spec!r}{did_you_mean(missing[0], found)}")
        found = {c: found[c] for c in wanted if c in found}
    out = [ClassScore(c, f) for c, f in found.items()]
    if len(out) < 2:
        names = list(features) + list(columns)
        hint = did_you_mean(spec, names) if "*" not in spec else ""
        what = "matches no column" if not out else "finds one class only"
        warnings.append(f"[columns] class_scores = {spec!r} {what}{hint}: per-class probability drift "
                        "needs two classes or more (a pattern such as \"score_*\", or a struct or list column)")
        out = []
    return out, warnings


def _list_class_scores(config: Config, good, schemas, used, out: Resolved, quote_ident) -> None:
    """A list column declared as class_scores becomes one numeric feature per class,
    `col.class` (the n-th value is the n-th name of `classes`)."""
    spec = config.columns.get("class_scores")
    if not spec or "*" in spec or spec in used:
        return
    fld = next((s.field(spec) for f in good for s in (schemas[f],) if spec in s.names), None)
    if fld is None or not (pa.types.is_list(fld.type) or pa.types.is_large_list(fld.type)
                           or pa.types.is_fixed_size_list(fld.type)):
        return
    classes = list(config.columns.get("classes") or [])
    out.ignored = [(n, r) for n, r in out.ignored if n != spec]
    if not classes:
        out.ignored.append((spec, "a list of class probabilities: name its classes in [columns] classes"))
        out.warnings.append(f"[columns] class_scores = {spec!r} is a list column: name the class of each "
                            "position with classes = [...]")
        return
    if not (pa.types.is_integer(fld.type.value_type) or pa.types.is_floating(fld.type.value_type)):
        out.ignored.append((spec, f"type {fld.type} holds no numbers: not class probabilities"))
        return
    taken = {f.name for f in out.features}
    for i, c in enumerate(classes, start=1):
        name = f"{spec}.{c}"
        if name not in taken:
            out.features.append(Feature(name, "numeric", "DOUBLE", f"CAST({quote_ident(spec)}[{i}] AS DOUBLE)"))
