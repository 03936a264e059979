"""The rules that turn dbt declarations into a :class:`GraphSpec`, shared wording with Jinja.

:mod:`dbt_rfm.manifest` collects declarations from a manifest into :class:`Declarations`;
:func:`assemble_graph` applies the inclusion rule, picks primary keys, validates links, time
columns and stypes against the warehouse columns. ``macros/graph/rfm_graph.sql`` does the same
in Jinja, with the same error messages (tests compare both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_rfm.errors import RfmError
from dbt_rfm.spec import STYPES, ColumnSpec, GraphSpec, LinkSpec, TableSpec
from dbt_rfm.stypes import TIME_FAMILIES, infer_stype, normalize_data_type, type_family

#: Keys allowed under ``config.meta.rfm``.
META_KEYS = ("exclude", "primary_key", "stypes", "targets", "time_column")

_REF = re.compile(r"""^\s*ref\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]+)\3\s*)?(?:,[^)]*)?\)\s*$""")

_HOW_TO_KEY = (
    "declare one with a primary_key constraint, unique + not_null tests on one column, "
    "or meta.rfm.primary_key"
)


def closest(word: str, choices: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the choice sharing most character pairs, or ``""``.

    Dice similarity over character bigrams, at least 0.5; ties go to the first choice in
    sorted order. Simple enough to implement identically in Jinja (``_rfm_did_you_mean``).
    """
    mine = _bigrams(word)
    best, best_score = "", 0.0
    for choice in sorted(choices):
        theirs = _bigrams(choice)
        score = 2.0 * len(mine & theirs) / (len(mine) + len(theirs))
        if score > best_score:
            best, best_score = choice, score
    return f" (did you mean '{best}'?)" if best_score >= 0.5 else ""


def _bigrams(word: str) -> set[str]:
    w = word.lower()
    return {w[i : i + 2] for i in range(len(w) - 1)} or {w}


def ref_target(to: Any) -> tuple[str | None, str] | None:
    """``(package or None, model)`` named by ``"ref('model')"`` / ``"ref('pkg', 'model')"``."""
    m = _REF.match(to) if isinstance(to, str) else None
    if m is None:
        return None
    return (m.group(2), m.group(4)) if m.group(4) else (None, m.group(2))


@dataclass(frozen=True)
class RfmMeta:
    """``config.meta.rfm`` of one dbt model.

    Attributes:
        time_column: row time column, or None for a static table.
        exclude: columns left out of the graph.
        stypes: column -> stype overrides.
        primary_key: declared key columns (a surrogate or composite key), or None.
        targets: predictive targets, passed through unvalidated (owned by the targets code).
    """

    time_column: str | None = None
    exclude: tuple[str, ...] = ()
    stypes: Mapping[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] | None = None
    targets: Any = None
    declared: bool = False

    @classmethod
    def from_dict(cls, model: str, raw: Any) -> RfmMeta:
        """Lift ``meta.rfm`` (None when absent); unknown keys are errors with a suggestion."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RfmError(f"model '{model}': meta.rfm must be a mapping; found {raw}")
        for key in raw:
            if key not in META_KEYS:
                raise RfmError(
                    f"model '{model}': unknown key '{key}' under meta.rfm"
                    f"{closest(str(key), META_KEYS)}; known keys: {', '.join(META_KEYS)}"
                )
        time_column = raw.get("time_column")
        if time_column is not None and not isinstance(time_column, str):
            raise RfmError(
                f"model '{model}': meta.rfm.time_column must be a column name; found {time_column}"
            )
        stypes = raw.get("stypes") or {}
        if not isinstance(stypes, Mapping):
            raise RfmError(
                f"model '{model}': meta.rfm.stypes must map column names to stypes; found {stypes}"
            )
        pk = raw.get("primary_key")
        return cls(
            time_column=time_column,
            exclude=_names(model, "exclude", raw.get("exclude")) or (),
            stypes=dict(stypes),
            primary_key=_names(model, "primary_key", pk) if pk is not None else None,
            targets=raw.get("targets"),
            declared=True,
        )


def parse_meta(model: str, raw: Any) -> RfmMeta:
    """Shorthand for :meth:`RfmMeta.from_dict`."""
    return RfmMeta.from_dict(model, raw)


def _names(model: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RfmError(f"model '{model}': meta.rfm.{key} must be a list of column names; found {value}")


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
    specs = []
    for c, dtype in columns.types.items():
        if c in excluded:
            continue
        stype = "key" if c in key_cols else overrides.get(c) or infer_stype(dtype)
        if stype is None:
            raise RfmError(
                f"model '{name}', column '{c}': no stype for data type {dtype}; set "
                f"meta.rfm.stypes for it, or list it in meta.rfm.exclude"
            )
        specs.append(ColumnSpec(c, dtype, stype))
    return TableSpec(name, t["relation"], pk, time_col, tuple(specs))
