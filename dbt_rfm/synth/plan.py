"""Random schemas: which tables, their roles, keys, links and value columns.

A plan is drawn first (cheap, no data) and then filled by :mod:`dbt_rfm.synth.generate`.
Roles:

* ``dim``: a small entity table (stores, products): static, parents of other rows;
* ``main``: a large entity table (customers, users), static or with a creation time, maybe
  linked to a dim and, sometimes, to itself (``referred_by``);
* ``event``: rows with a time, linked to an entity parent and maybe a second parent;
* ``line``: rows of an event (order lines), linked to that event and maybe a second parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dbt_rfm.synth.config import SynthConfig

# fmt: off
MAIN_NAMES = (
    "customers", "users", "accounts", "patients", "drivers", "members", "authors", "students",
    "households", "devices", "players", "vendors"
)
DIM_NAMES = (
    "stores", "products", "regions", "categories", "merchants", "clinics", "venues", "plans",
    "brands", "warehouses", "teams", "courses"
)
EVENT_NAMES = (
    "orders", "visits", "payments", "sessions", "reviews", "trips", "claims", "posts",
    "transactions", "tickets", "shipments", "bookings"
)
LINE_NAMES = (
    "order_lines", "line_items", "steps", "charges", "messages", "readings"
)

VALUE_NAMES = {
    "numerical": (
        "amount", "price", "quantity", "score", "duration_min", "distance_km", "weight",
        "balance", "age", "discount", "fee", "size", "temperature", "latency_ms", "units"
    ),
    "categorical": (
        "status", "channel", "tier", "segment", "color", "kind", "region", "device_type",
        "payment_method", "plan_name", "source", "language"
    ),
    "boolean": (
        "is_active", "is_premium", "flagged", "returned", "verified", "opted_in", "on_time",
        "is_gift", "cancelled"
    ),
    "timestamp": (
        "requested_at", "scheduled_at", "first_contact_at", "confirmed_at", "last_review_at",
        "opened_at"
    ),
    "text": (
        "title", "note", "tags", "description", "keywords", "comment", "headline"
    ),
}
# fmt: on
#: Chance of each stype for a value column.
STYPE_WEIGHTS = {
    "numerical": 0.34,
    "categorical": 0.24,
    "boolean": 0.14,
    "timestamp": 0.1,
    "text": 0.18,
}
#: Numerical value shapes: (name, data type).
NUM_KINDS = (
    ("gaussian", "double"),
    ("lognormal", "double"),
    ("count", "bigint"),
    ("offset", "double"),
)


@dataclass(frozen=True)
class ValuePlan:
    """A value column: name, stype, warehouse data type, shape and null rate."""

    name: str
    stype: str
    data_type: str
    kind: str
    null_rate: float


@dataclass
class TablePlan:
    """One table of a plan (mutable while the plan is drawn).

    Attributes:
        name: table name.
        role: ``dim``, ``main``, ``event`` or ``line``.
        size: rows (entity tables) or expected rows (event tables).
        key: primary key as (column, data type) pairs.
        time_column: the row time column, or None.
        parent: the primary parent table (dim of a main, entity of an event, event of a line).
        second: an optional second parent (an entity table) of an event or line table.
        self_link: whether the table links to itself (mains only).
        values: value columns.
    """

    name: str
    role: str
    size: int
    key: tuple[tuple[str, str], ...]
    time_column: str | None = None
    parent: str | None = None
    second: str | None = None
    self_link: bool = False
    values: list[ValuePlan] = field(default_factory=list)


def singular(name: str) -> str:
    """``categories`` -> ``category``, ``orders`` -> ``order``."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def fk_columns(parent: TablePlan, self_link: bool = False) -> tuple[tuple[str, str], ...]:
    """Child columns (name, data type) of a link to ``parent``'s key."""
    prefix = "referred_by_" if self_link else ""
    return tuple((prefix + k, dt) for k, dt in parent.key)


def draw_plan(rng: np.random.Generator, cfg: SynthConfig) -> list[TablePlan]:
    """Draw a random schema; tables come parents first.

    Returns:
        Table plans: dims, then mains, then events, then lines.
    """
    n_tables = int(rng.integers(cfg.min_tables, cfg.max_tables + 1))
    n_entity = int(rng.integers(1, n_tables)) if n_tables > 2 else 1
    n_event = n_tables - n_entity
    n_dim = int(rng.integers(0, n_entity))  # at least one main
    n_main = n_entity - n_dim
    names = {
        role: [str(x) for x in rng.permutation(pool)]
        for role, pool in (
            ("main", MAIN_NAMES),
            ("dim", DIM_NAMES),
            ("event", EVENT_NAMES),
            ("line", LINE_NAMES),
        )
    }
    dims = [_entity(rng, cfg, names["dim"].pop(), "dim") for _ in range(n_dim)]
    mains = [_entity(rng, cfg, names["main"].pop(), "main") for _ in range(n_main)]
    for m in mains:
        if dims and rng.random() < 0.5:
            m.parent = dims[int(rng.integers(len(dims)))].name
        m.self_link = bool(rng.random() < cfg.self_link_prob)
        if rng.random() < 0.5:
            m.time_column = "created_at"
    events: list[TablePlan] = []
    lines: list[TablePlan] = []
    entities = dims + mains
    for i in range(n_event):
        tops = [e for e in events if e.role == "event"]
        if i > 0 and tops and rng.random() < cfg.child_event_prob:
            parent = _pick(rng, tops, _used(entities, events, lines, mains))
            t = TablePlan(names["line"].pop(), "line", 0, (), "created_at", parent.name)
            if rng.random() < cfg.composite_key_prob * 3:
                t.key = (*fk_columns(parent), ("line_no", "bigint"))
            else:
                t.key = _single_key(rng, cfg, t.name)
            lines.append(t)
        else:
            # the first event table hangs off a main entity so that targets always exist
            pool = mains if i == 0 else entities
            parent = _pick(rng, pool, _used(entities, events, lines, mains))
            name = names["event"].pop()
            t = TablePlan(name, "event", 0, _single_key(rng, cfg, name), "event_time", parent.name)
            events.append(t)
        root = parent.parent if t.role == "line" else parent.name
        others = [e for e in entities if e.name not in (root, parent.parent)]
        if others and rng.random() < cfg.second_parent_prob:
            t.second = _pick(rng, others, _used(entities, events, lines, mains)).name
    tables = _connect(rng, dims + mains + events + lines, home=events[0].name)
    for t in tables:
        t.values = _values(rng, cfg, t)
    return tables


def _used(entities: list[TablePlan], *groups: list[TablePlan]) -> set[str]:
    """Names of tables that take part in a link to another table."""
    out: set[str] = set()
    for t in [*entities, *(t for g in groups for t in g)]:
        if t.parent or t.second:
            out |= {t.name, t.parent or t.name, t.second or t.name}
    return out


def _pick(rng: np.random.Generator, pool: list[TablePlan], used: set[str]) -> TablePlan:
    """A random table of ``pool``, preferring those not yet linked."""
    fresh = [t for t in pool if t.name not in used]
    choices = fresh or pool
    return choices[int(rng.integers(len(choices)))]


def _components(tables: list[TablePlan]) -> list[set[str]]:
    """Connected components of the link graph (self-links ignored)."""
    comp = {t.name: {t.name} for t in tables}
    for t in tables:
        for other in (t.parent, t.second):
            if other is not None and comp[other] is not comp[t.name]:
                merged = comp[other] | comp[t.name]
                for name in merged:
                    comp[name] = merged
    out: list[set[str]] = []
    for c in comp.values():
        if c not in out:
            out.append(c)
    return out


def _connect(rng: np.random.Generator, tables: list[TablePlan], home: str) -> list[TablePlan]:
    """Add links until every table is reachable from ``home``; drop what cannot be reached.

    A new link is either a second parent of an event or line table, or a dim parent of a main.
    """
    by_name = {t.name: t for t in tables}
    while True:
        comps = _components(tables)
        if len(comps) == 1:
            return tables
        mine = next(c for c in comps if home in c)
        other = next(c for c in comps if home not in c)
        options: list[tuple[TablePlan, str, str]] = []
        for a, b in ((mine, other), (other, mine)):
            for host in (by_name[n] for n in a):
                for cand in (by_name[n] for n in b):
                    if (
                        host.role in ("event", "line")
                        and host.second is None
                        and (cand.role in ("dim", "main"))
                    ):
                        options.append((host, "second", cand.name))
                    if host.role == "main" and host.parent is None and cand.role == "dim":
                        options.append((host, "parent", cand.name))
        if not options:
            tables = [t for t in tables if t.name not in other]
            continue
        host, attr, cand_name = options[int(rng.integers(len(options)))]
        setattr(host, attr, cand_name)


def _single_key(rng: np.random.Generator, cfg: SynthConfig, name: str) -> tuple[tuple[str, str]]:
    dtype = "varchar" if rng.random() < cfg.text_key_prob else "bigint"
    return ((f"{singular(name)}_id", dtype),)


def _entity(rng: np.random.Generator, cfg: SynthConfig, name: str, role: str) -> TablePlan:
    if role == "main":
        lo, hi = np.log(cfg.min_entities), np.log(cfg.max_entities)
    else:
        lo, hi = np.log(8), np.log(max(9, cfg.min_entities))
    size = int(np.exp(rng.uniform(lo, hi)))
    if rng.random() < cfg.composite_key_prob:
        key: tuple[tuple[str, str], ...] = (
            (f"{singular(name)}_code", "varchar"),
            (f"{singular(name)}_no", "bigint"),
        )
    else:
        key = _single_key(rng, cfg, name)
    return TablePlan(name, role, size, key)


def _values(rng: np.random.Generator, cfg: SynthConfig, t: TablePlan) -> list[ValuePlan]:
    n = int(rng.integers(1, 7 if t.role in ("main", "dim") else 6))
    stypes = list(STYPE_WEIGHTS)
    probs = np.array(list(STYPE_WEIGHTS.values()))
    chosen = rng.choice(len(stypes), size=n, p=probs / probs.sum())
    taken = {k for k, _ in t.key} | {"created_at", "event_time"}
    out: list[ValuePlan] = []
    for idx in chosen:
        stype = stypes[int(idx)]
        free = [v for v in VALUE_NAMES[stype] if v not in taken]
        if not free:
            continue
        name = free[int(rng.integers(len(free)))]
        taken.add(name)
        dtype, kind = {
            "categorical": ("varchar", "cat"),
            "boolean": ("boolean", "bool"),
            "timestamp": ("timestamp", "lag"),
            "text": ("varchar", "tokens"),
        }.get(stype, ("", ""))
        if stype == "numerical":
            kind, dtype = NUM_KINDS[int(rng.integers(len(NUM_KINDS)))]
        null_rate = float(rng.uniform(0, cfg.max_null_rate)) if rng.random() < 0.5 else 0.0
        out.append(ValuePlan(name, stype, dtype, kind, null_rate))
    return out
