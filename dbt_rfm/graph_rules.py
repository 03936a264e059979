"""The rules that turn dbt declarations into a :class:`GraphSpec`, shared wording with Jinja.

:mod:`dbt_rfm.manifest` collects declarations from a manifest into :class:`Declarations`
(``meta.rfm`` parsed by :mod:`dbt_rfm.rfm_meta`);
:func:`assemble_graph` applies the inclusion rule, picks primary keys, validates links, time
columns and stypes against the warehouse columns. ``macros/graph/rfm_graph.sql`` does the same
in Jinja, with the same error messages (tests compare both).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.rfm_meta import RfmMeta, closest
from dbt_rfm.spec import STYPES, ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.stypes import TIME_FAMILIES, infer_stype, normalize_data_type, type_family

_log = logging.getLogger(__name__)

_HOW_TO_KEY = (
    "declare one with a primary_key constraint, unique + not_null tests on one column, "
    "or meta.rfm.primary_key"
)


@dataclass(frozen=True)
class LinkDecl:
    """One declared link, before validation (``to_columns`` may be empty: the parent's key)."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    to_columns: tuple[str, ...]
    source: str


@dataclass
class Declarations:
    """What the manifest declares, keyed by dbt unique_id."""

    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[LinkDecl] = field(default_factory=list)

    def add_table(
        self, uid: str, name: str, relation: str, materialized: str | None, meta: RfmMeta
    ) -> None:
        """Register a model, seed or snapshot."""
        self.tables[uid] = {
            "name": name,
            "relation": relation,
            "materialized": materialized,
            "meta": meta,
            "model_key": [],
            "column_key": [],
            "tested": {},
        }

    def add_key(self, uid: str, level: str, columns: Sequence[str]) -> None:
        """A primary_key constraint, model-level or column-level."""
        self.tables[uid][f"{level}_key"].extend(columns)

    def add_tested(self, uid: str, test: str, column: str) -> None:
        """A ``unique`` or ``not_null`` test on a column."""
        self.tables[uid]["tested"].setdefault(column, set()).add(test)

    def add_link(self, link: LinkDecl) -> None:
        """A foreign_key constraint or relationships test."""
        self.links.append(link)


class _Columns:
    """The warehouse columns of one model, matched exactly, else case-insensitively."""

    def __init__(self, model: str, columns: Sequence[tuple[str, str]]) -> None:
        self.model = model
        self.types = {name: normalize_data_type(dtype) for name, dtype in columns}
        self._lower = {name.lower(): name for name in self.types}

    def resolve(self, name: str, named_by: str) -> str:
        if name in self.types:
            return name
        if name.lower() in self._lower:
            return self._lower[name.lower()]
        raise RfmError(
            f"model '{self.model}', column '{name}': no such column in the warehouse "
            f"(named by {named_by}){closest(name, list(self.types))}"
        )


def assemble_graph(
    decl: Declarations, column_types: Mapping[str, Sequence[tuple[str, str]]]
) -> GraphSpec:
    """Apply the inclusion rule and validate; see docs/graph.md for every rule.

    Args:
        decl: declarations collected from the manifest.
        column_types: ``[(column, data_type)]`` per relation key (quotes removed, lower case)
            or model name (lower case).
    """
    why: dict[str, str] = {}
    for uid, t in decl.tables.items():
        if t["meta"].declared:
            why.setdefault(uid, "it has meta.rfm")
    for lk in decl.links:
        why.setdefault(lk.child, "it declares a link")
        why.setdefault(lk.parent, "a link points to it")
    names = {uid: decl.tables[uid]["name"] for uid in why}
    cols: dict[str, _Columns] = {}
    keys: dict[str, tuple[str, ...]] = {}
    for uid in why:
        t = decl.tables[uid]
        if t["materialized"] == "ephemeral":
            raise RfmError(
                f"model '{t['name']}' is ephemeral; models in the rfm graph must be tables or views"
            )
        found = column_types.get(t["relation"].replace('"', "").replace("`", "").lower())
        if found is None:
            found = column_types.get(t["name"].lower())
        if not found:
            raise RfmError(
                f"model '{t['name']}': no columns found in the warehouse for {t['relation']}; "
                "build it first"
            )
        cols[uid] = _Columns(t["name"], found)
    links = _links(decl, names, cols, keys)
    tables = [_table(decl.tables[uid], cols[uid], keys, uid, links, why) for uid in why]
    return GraphSpec(tables=tuple(tables), links=tuple(links))


def _primary_key(t: Mapping[str, Any], columns: _Columns) -> tuple[str, ...]:
    """The declared key, in order of precedence; () when none."""
    meta: RfmMeta = t["meta"]
    if meta.primary_key is not None:
        declared, named_by = list(meta.primary_key), "meta.rfm.primary_key"
    elif t["model_key"]:
        declared, named_by = t["model_key"], "a primary_key constraint"
    elif t["column_key"]:
        declared, named_by = t["column_key"], "a primary_key constraint"
    else:
        tested = sorted(c for c, tests in t["tested"].items() if len(tests) == 2)
        if len(tested) > 1:
            raise RfmError(
                f"model '{t['name']}': unique + not_null tests on several columns "
                f"({', '.join(tested)}); name the primary key with meta.rfm.primary_key"
            )
        declared, named_by = tested, "unique + not_null tests"
    return tuple(columns.resolve(c, named_by) for c in declared)


def _key_of(
    uid: str,
    decl: Declarations,
    cols: Mapping[str, _Columns],
    keys: dict[str, tuple[str, ...]],
) -> tuple[str, ...]:
    if uid not in keys:
        keys[uid] = _primary_key(decl.tables[uid], cols[uid])
    return keys[uid]


def _links(
    decl: Declarations,
    names: Mapping[str, str],
    cols: Mapping[str, _Columns],
    keys: dict[str, tuple[str, ...]],
) -> list[LinkSpec]:
    out: dict[str, tuple[LinkSpec, str]] = {}
    for lk in decl.links:
        child, parent = names[lk.child], names[lk.parent]
        child_cols = tuple(
            cols[lk.child].resolve(c, f"{lk.source}, to model '{parent}'") for c in lk.child_columns
        )
        link_name = f"{child}.{'+'.join(child_cols)}->{parent}"
        pk = _key_of(lk.parent, decl, cols, keys)
        if not pk:
            raise RfmError(
                f"model '{parent}' has no primary key, but link '{link_name}' points to it; "
                + _HOW_TO_KEY
            )
        to_cols = tuple(
            cols[lk.parent].resolve(c, f"{lk.source}, link '{link_name}'")
            for c in (lk.to_columns or pk)
        )
        if len(to_cols) != len(child_cols):
            raise RfmError(
                f"link '{link_name}': {len(child_cols)} child column(s) ({', '.join(child_cols)}) "
                f"but {len(to_cols)} parent column(s) ({', '.join(to_cols)})"
            )
        if sorted(to_cols) != sorted(pk):
            raise RfmError(
                f"link '{link_name}': points to column(s) {', '.join(to_cols)} of model "
                f"'{parent}', which are not its primary key ({', '.join(pk)}); "
                "a link must point at the parent's primary key"
            )
        pairs = dict(zip(to_cols, child_cols, strict=True))
        child_cols = tuple(pairs[p] for p in pk)
        link = LinkSpec(child, child_cols, parent, pk)
        for c, p in zip(child_cols, pk, strict=True):
            ct, pt = cols[lk.child].types[c], cols[lk.parent].types[p]
            if type_family(ct) != type_family(pt):
                raise RfmError(
                    f"link '{link.name}': model '{child}', column '{c}' is {ct} but model "
                    f"'{parent}', column '{p}' is {pt}; a foreign key must have the type of "
                    "the key it points to"
                )
        if link.name in out:
            first, second = sorted([out[link.name][1], lk.source])
            raise RfmError(
                f"link '{link.name}' is declared twice: by {first} and by {second}; declare each "
                "link once (rfm_link_integrity tests a link without declaring it)"
            )
        out[link.name] = (link, lk.source)
    return [link for link, _ in out.values()]


def _table(
    t: Mapping[str, Any],
    columns: _Columns,
    keys: dict[str, tuple[str, ...]],
    uid: str,
    links: Sequence[LinkSpec],
    why: Mapping[str, str],
) -> TableSpec:
    name, meta = t["name"], t["meta"]
    if uid not in keys:
        keys[uid] = _primary_key(t, columns)
    pk = keys[uid]
    if not pk:
        raise RfmError(
            f"model '{name}' is in the rfm graph ({why[uid]}) but has no primary key; "
            + _HOW_TO_KEY
            + " (a table with no natural key needs a surrogate, like the demo's flights.flight_id)"
        )
    key_cols = set(pk) | {c for lk in links if lk.child == name for c in lk.child_columns}
    time_col = None
    if meta.time_column is not None:
        time_col = columns.resolve(meta.time_column, "meta.rfm.time_column")
        dtype = columns.types[time_col]
        if type_family(dtype) not in TIME_FAMILIES:
            raise RfmError(
                f"model '{name}', column '{time_col}': meta.rfm.time_column must be a date or "
                f"timestamp; found {dtype}"
            )
    excluded = {columns.resolve(c, "meta.rfm.exclude") for c in meta.exclude}
    for c in sorted(excluded):
        if c in key_cols or c == time_col:
            what = "a key column" if c in key_cols else "the time column"
            raise RfmError(f"model '{name}', column '{c}': cannot be excluded, it is {what}")
    overrides = {}
    for c, stype in meta.stypes.items():
        c = columns.resolve(c, "meta.rfm.stypes")
        if stype not in STYPES:
            raise RfmError(
                f"model '{name}', column '{c}': unknown stype '{stype}' in meta.rfm.stypes"
                f"{closest(str(stype), STYPES)}; stypes: {', '.join(STYPES)}"
            )
        if c in key_cols and stype != "key":
            raise RfmError(
                f"model '{name}', column '{c}': is a key column (stype 'key'); meta.rfm.stypes "
                f"cannot make it '{stype}'"
            )
        overrides[c] = stype
    gates = _availability(name, meta.available_at, columns, excluded, key_cols)
    specs = []
    for c, dtype in columns.types.items():
        if c in excluded:
            continue
        stype = "key" if c in key_cols else overrides.get(c) or infer_stype(dtype)
        if stype is None:
            _log.info(
                "dbt-rfm: model '%s', column '%s': left out, no stype for data type %s; set "
                "meta.rfm.stypes to keep it",
                name,
                c,
                dtype,
            )
            continue
        if c in gates.values() and stype != "timestamp":
            raise RfmError(
                f"model '{name}', column '{c}': meta.rfm.available_at uses it as a time, so "
                f"its stype must be 'timestamp'; found '{stype}'"
            )
        specs.append(ColumnSpec(c, dtype, stype, gates.get(c)))
    return TableSpec(name, t["relation"], pk, time_col, tuple(specs))


def _availability(
    name: str,
    declared: Mapping[str, str],
    columns: _Columns,
    excluded: set[str],
    key_cols: set[str],
) -> dict[str, str]:
    """``meta.rfm.available_at`` resolved: column -> its availability column."""
    gates: dict[str, str] = {}
    for raw_c, raw_at in declared.items():
        c = columns.resolve(raw_c, "meta.rfm.available_at")
        at = columns.resolve(raw_at, f"meta.rfm.available_at.{c}")
        if type_family(columns.types[at]) not in TIME_FAMILIES:
            raise RfmError(
                f"model '{name}', column '{at}': meta.rfm.available_at.{c} must name a date or "
                f"timestamp column; found {columns.types[at]}"
            )
        for col in (c, at):
            if col in key_cols or col in excluded:
                what = "a key column" if col in key_cols else "excluded (meta.rfm.exclude)"
                raise RfmError(
                    f"model '{name}', column '{col}': is {what}, so meta.rfm.available_at "
                    "cannot use it"
                )
        gates[c] = at
    for c in gates:
        if c in gates.values():
            raise RfmError(
                f"model '{name}', column '{c}': meta.rfm.available_at uses it as a time, so it "
                "cannot have an availability time itself"
            )
    return gates
