"""Baseline sampler: one query per hop per batch of anchors, driven from Python.

This is the pattern other tools use: for each batch of anchors, for each hop, send the
frontier to the database and fetch its neighbours (both link directions, the same caps via
``row_number()``, the same visibility rule), then deduplicate against the nodes seen so far and
loop. It returns the same rows as the single-statement SQL sampler (checked by the benchmark).
Tables are keyed once up front (text row keys and foreign keys), outside the timings; each hop
query joins the frontier rows of a table to their foreign keys once for all links from it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from dbt_rfm.spec import GraphSpec

__all__ = ["Baseline"]


def _key(alias: str, cols: tuple[str, ...], nullable: bool = False) -> str:
    parts = [f"cast({alias}.{c} as varchar)" for c in cols]
    if len(parts) == 1:
        return parts[0]
    text = f"concat_ws('|', {', '.join(parts)})"
    if not nullable:
        return text
    return f"case when {' and '.join(f'{alias}.{c} is not null' for c in cols)} then {text} end"


class Baseline:
    """Per-hop, per-batch sampler over keyed copies of the graph tables in ``con``."""

    def __init__(self, con: Any, spec: GraphSpec) -> None:
        self.con, self.spec = con, spec
        for t in spec.tables:
            cols = [f"{_key('r', t.primary_key)} as row_key"]
            if t.time_column:
                cols.append(f"cast(r.{t.time_column} as timestamp) as row_time")
            for i, lk in enumerate(spec.links):
                if lk.child == t.name:
                    cols.append(f"{_key('r', lk.child_columns, True)} as fk_{i}")
            con.execute(
                f"create or replace table k_{t.name} as select {', '.join(cols)} "
                f"from {t.relation} as r"
            )

    def _hop_sql(self, tables: set[str], cap: int) -> str:
        ctes, parts = [], []
        for t in sorted(tables):  # frontier rows of each child-side table joined to their keys once
            fks = [f"c.fk_{i}" for i, lk in enumerate(self.spec.links) if lk.child == t]
            if fks:
                ctes.append(
                    f"fk_{t} as (select f.aid, f.anchor_time, f.row_key, {', '.join(fks)} "
                    f"from frontier f join k_{t} c on c.row_key = f.row_key "
                    f"where f.table_name = '{t}')"
                )
        for i, lk in enumerate(self.spec.links):
            parent, child = self.spec.table(lk.parent), self.spec.table(lk.child)
            if lk.child in tables:
                vis = " and p.row_time <= f.anchor_time" if parent.time_column else ""
                parts.append(
                    f"select f.aid, f.anchor_time, '{lk.parent}' as table_name, p.row_key, "
                    f"'{lk.child}' as parent_table, f.row_key as parent_key "
                    f"from fk_{lk.child} f join k_{lk.parent} p on p.row_key = f.fk_{i}"
                    + (f" where true{vis}" if vis else "")
                )
            if lk.parent in tables and cap > 0:
                vis = " and c.row_time <= f.anchor_time" if child.time_column else ""
                order = "c.row_time desc, c.row_key" if child.time_column else "c.row_key"
                parts.append(
                    f"select aid, anchor_time, table_name, row_key, parent_table, parent_key "
                    f"from (select f.aid, f.anchor_time, '{lk.child}' as table_name, c.row_key, "
                    f"f.table_name as parent_table, f.row_key as parent_key, row_number() over "
                    f"(partition by f.aid, f.row_key order by {order}) as rn "
                    f"from frontier f join k_{lk.child} c on c.fk_{i} = f.row_key "
                    f"where f.table_name = '{lk.parent}'{vis}) where rn <= {cap}"
                )
        if not parts:
            return "select * from frontier where 1 = 0"
        return (
            ("with " + ", ".join(ctes) + " " if ctes else "")
            + "select aid, anchor_time, table_name, row_key, parent_table, parent_key from ("
            "select n.*, row_number() over (partition by n.aid, n.table_name, n.row_key "
            "order by n.parent_table, n.parent_key) as rn from ("
            + " union all ".join(parts)
            + ") n where not exists (select 1 from seen s where s.aid = n.aid and "
            "s.table_name = n.table_name and s.row_key = n.row_key)) where rn = 1"
        )

    def sample(
        self, entity: str, anchors: pa.Table, hops: int, fanouts: tuple[int, ...], batch: int
    ) -> pa.Table:
        """Sample ``anchors`` (entity_id, anchor_time; distinct) batch by batch, hop by hop."""
        out = []
        for start in range(0, anchors.num_rows, batch):
            a = anchors.slice(start, batch)
            n = a.num_rows
            hop0 = pa.table(
                {
                    "aid": pa.array(range(n), pa.int64()),
                    "anchor_time": a["anchor_time"].cast(pa.timestamp("us")),
                    "table_name": pa.array([entity] * n, pa.string()),
                    "row_key": a["entity_id"].cast(pa.string()),
                    "parent_table": pa.nulls(n, pa.string()),
                    "parent_key": pa.nulls(n, pa.string()),
                }
            )
            frontier, seen, hop_tables = hop0, hop0, {entity}
            layers = [hop0.append_column("hop", pa.array([0] * n, pa.int32()))]
            for h in range(1, hops + 1):
                self.con.register("frontier", frontier)
                self.con.register("seen", seen)
                frontier = self.con.sql(self._hop_sql(hop_tables, fanouts[h - 1])).to_arrow_table()
                self.con.unregister("frontier")
                self.con.unregister("seen")
                frontier = frontier.cast(hop0.schema)
                seen = pa.concat_tables([seen, frontier])
                hop_tables = set(frontier["table_name"].to_pylist())
                layers.append(
                    frontier.append_column("hop", pa.array([h] * frontier.num_rows, pa.int32()))
                )
            got = pa.concat_tables(layers)
            ids = a["entity_id"].combine_chunks().take(got["aid"])
            out.append(got.drop_columns(["aid"]).add_column(0, "entity_id", ids))
        return pa.concat_tables(out)
