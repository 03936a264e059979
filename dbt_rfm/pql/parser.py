"""Hand-written recursive-descent parser for PQL strings (no parser-generator dependency).

Grammar (keywords case-insensitive)::

    query   := PREDICT target [RANK TOP int] FOR EACH ref [WHERE filter]
    target  := (agg | ref) [cmp]
    agg     := FN '(' table '.' (col | '*') [WHERE cond] ',' num ',' num [',' unit] ')'
    cond    := and (OR and)* ; and := unary (AND unary)* ; unary := NOT unary | '(' cond ')' | atom
    atom    := ref cmp                    (in an entity filter also: agg cmp)
    cmp     := op value | [NOT] IN '(' value, ... ')' | IS [NOT] NULL | [NOT] LIKE 'text'
    ref     := table '.' column ;  num := ['-'] (int | INF)

The entity filter (``WHERE`` after ``FOR EACH``) may AND together at most one aggregate
comparison and any conditions on the entity's columns.
"""

from __future__ import annotations

from dbt_rfm.pql.conditions import BoolOp, Compare, Condition, Not, Scalar
from dbt_rfm.pql.ir import AGG_FNS, UNITS, Aggregate, Anchors, Cast, EntityFilter
from dbt_rfm.pql.lexer import Token, syntax_error, tokenize
from dbt_rfm.pql.target import BOOLEAN_CAST, Target, infer_task
from dbt_rfm.spec import GraphSpec

_UNIT_ALIASES = {u.rstrip("s"): u for u in UNITS} | {u: u for u in UNITS}


class _AggTerm:
    """An aggregate comparison inside an entity filter (before it is split out)."""

    def __init__(self, agg: Aggregate, cast: Cast | None, pos: int) -> None:
        self.agg, self.cast, self.pos = agg, cast, pos


def cast_condition(c: Condition | _AggTerm) -> Condition:
    """Narrow a parsed condition (aggregates only occur where ``allow_agg`` was true)."""
    if isinstance(c, _AggTerm):  # pragma: no cover - the grammar never produces this
        raise TypeError("aggregate in a row condition")
    return c


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Token | None = None) -> Exception:
        t = tok or self.tok
        found = "end of query" if t.kind == "eof" else repr(t.text)
        return syntax_error(self.text, t.pos, f"{message}, found {found}")

    def at(self, *words: str) -> bool:
        return self.tok.kind in ("keyword", "op", "punct") and self.tok.upper in words

    def take(self, *words: str) -> Token:
        if not self.at(*words):
            raise self.error(f"expected {' or '.join(words)}")
        self.i += 1
        return self.toks[self.i - 1]

    def ident(self, what: str) -> Token:
        if self.tok.kind != "ident":
            raise self.error(f"expected {what}")
        self.i += 1
        return self.toks[self.i - 1]

    # -- grammar -------------------------------------------------------------------------
    def ref(self, allow_star: bool = False) -> tuple[str, str, Token]:
        table = self.ident("a table name")
        self.take(".")
        if allow_star and self.at("*"):
            self.i += 1
            return table.text, "*", table
        return table.text, self.ident("a column name").text, table

    def number(self, allow_inf: bool = False) -> int | float | None:
        neg = self.at("-")
        if neg:
            self.i += 1
        if allow_inf and self.at("INF"):
            if not neg:
                raise self.error("only -INF may start a window")
            self.i += 1
            return None
        if self.tok.kind != "number":
            raise self.error("expected a number")
        text = self.tok.text
        self.i += 1
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return -value if neg else value

    def whole(self, allow_inf: bool = False) -> int | None:
        tok = self.tok
        value = self.number(allow_inf)
        if value is not None and int(value) != value:
            raise self.error("expected a whole number", tok)
        return None if value is None else int(value)

    def value(self) -> Scalar:
        if self.tok.kind == "string":
            self.i += 1
            return self.toks[self.i - 1].text[1:-1].replace("''", "'")
        if self.at("TRUE", "FALSE"):
            self.i += 1
            return self.toks[self.i - 1].upper == "TRUE"
        if self.at("NULL"):
            self.i += 1
            return None
        return self.number()

    def cmp(self) -> tuple[str, Scalar | tuple[Scalar, ...]] | None:
        """Parse an optional comparison; return (op, value) or None when none follows."""
        if self.at("IS"):
            self.i += 1
            neg = self.at("NOT")
            if neg:
                self.i += 1
            self.take("NULL")
            return ("IS NOT NULL" if neg else "IS NULL"), None
        neg = self.at("NOT")
        if neg:
            self.i += 1
            if not self.at("IN", "LIKE"):
                raise self.error("expected IN or LIKE after NOT")
        if self.at("IN"):
            self.i += 1
            self.take("(")
            values = [self.value()]
            while self.at(","):
                self.i += 1
                values.append(self.value())
            self.take(")")
            return ("NOT IN" if neg else "IN"), tuple(values)
        if self.at("LIKE"):
            self.i += 1
            if self.tok.kind != "string":
                raise self.error("expected a 'pattern' after LIKE")
            return ("NOT LIKE" if neg else "LIKE"), self.value()
        if self.tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(self.tok.text, self.tok.text)
            self.i += 1
            return op, self.value()
        return None

    def aggregate(self) -> Aggregate:
        fn = self.tok.upper
        self.i += 1
        self.take("(")
        table, column, _ = self.ref(allow_star=True)
        where = None
        if self.at("WHERE"):
            self.i += 1
            where = cast_condition(self.condition(table, allow_agg=False))
        self.take(",")
        start = self.whole(allow_inf=True)
        self.take(",")
        end_tok = self.tok
        end = self.whole()
        if end is None:
            raise self.error("expected a window end", end_tok)
        unit = "days"
        if self.at(","):
            self.i += 1
            unit_tok = self.ident("a time unit")
            unit = _UNIT_ALIASES.get(unit_tok.text.lower(), "")
            if not unit:
                raise self.error(f"expected a time unit ({', '.join(UNITS)})", unit_tok)
        self.take(")")
        return Aggregate(fn, table, column, start, end, unit, where)

    def is_agg(self) -> bool:
        return (
            self.tok.kind == "ident"
            and self.tok.upper in AGG_FNS
            and self.toks[self.i + 1].text == "("
        )

    def condition(self, table: str, allow_agg: bool) -> Condition | _AggTerm:
        items = [self.conjunction(table, allow_agg)]
        while self.at("OR"):
            self.i += 1
            items.append(self.conjunction(table, allow_agg))
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))  # type: ignore[arg-type]

    def conjunction(self, table: str, allow_agg: bool) -> Condition | _AggTerm:
        items = [self.unary(table, allow_agg)]
        while self.at("AND"):
            self.i += 1
            items.append(self.unary(table, allow_agg))
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))  # type: ignore[arg-type]

    def unary(self, table: str, allow_agg: bool) -> Condition | _AggTerm:
        if self.at("NOT"):
            self.i += 1
            return Not(self.unary(table, allow_agg))  # type: ignore[arg-type]
        if self.at("("):
            self.i += 1
            inner = self.condition(table, allow_agg)
            self.take(")")
            return inner
        start = self.tok
        if allow_agg and self.is_agg():
            agg = self.aggregate()
            c = self.cmp()
            return _AggTerm(agg, None if c is None else Cast(*c), start.pos)
        tname, column, ttok = self.ref()
        if tname != table:
            raise self.error(f"expected a column of '{table}' here", ttok)
        c = self.cmp()
        if c is None:
            raise self.error("expected a comparison (=, !=, <, <=, >, >=, IN, IS NULL, LIKE)")
        return Compare(column, c[0], c[1])


def _split_filter(p: _Parser, cond: Condition | _AggTerm) -> EntityFilter:
    """Split an entity filter into (one aggregate comparison, a condition on the entity)."""
    items: list[Condition | _AggTerm] = (
        list(cond.items) if isinstance(cond, BoolOp) and cond.op == "AND" else [cond]
    )
    aggs = [c for c in items if isinstance(c, _AggTerm)]
    rest = [cast_condition(c) for c in items if not isinstance(c, _AggTerm)]
    if len(aggs) > 1:
        raise syntax_error(p.text, aggs[1].pos, "v1 entity filters take one aggregate")

    def _nested(c: object) -> None:
        if isinstance(c, _AggTerm):
            raise syntax_error(
                p.text,
                c.pos,
                "aggregates in an entity filter may only be "
                "ANDed at the top level (not under OR / NOT) in v1",
            )
        for sub in getattr(c, "items", ()) or ([c.item] if isinstance(c, Not) else []):
            _nested(sub)

    for c in rest:
        _nested(c)
    where = None if not rest else rest[0] if len(rest) == 1 else BoolOp("AND", tuple(rest))
    return EntityFilter(aggs[0].agg if aggs else None, aggs[0].cast if aggs else None, where)


def parse(
    text: str, graph: GraphSpec, *, name: str = "query", anchors: Anchors | None = None
) -> Target:
    """Parse a PQL string into a :class:`Target` and validate it against ``graph``.

    Args:
        text: e.g. ``PREDICT COUNT(flights.*, 0, 30, days) FOR EACH planes.tailnum``.
        graph: the relational graph the names refer to.
        name: the target's name.
        anchors: anchor settings (spine / split); PQL has no syntax for them.

    Returns:
        The validated target.

    Raises:
        RfmError: a syntax error (with a caret under the offending token) or a validation error.
    """
    from dbt_rfm.pql.validate import column_stype, validate

    p = _Parser(text)
    p.take("PREDICT")
    agg: Aggregate | None = None
    static: tuple[str, str, Token] | None = None
    if p.is_agg():
        agg = p.aggregate()
    else:
        static = p.ref()
    c = p.cmp()
    cast = None if c is None else Cast(*c)
    top_k = None
    if p.at("RANK"):
        rank_tok = p.take("RANK")
        p.take("TOP")
        top_k = p.whole()
        if agg is None or agg.fn != "LIST_DISTINCT":
            raise p.error("RANK TOP k needs a LIST_DISTINCT(...) target", rank_tok)
    if p.at("AND", "OR"):
        raise p.error("v1 targets take one aggregate or column (combine them in SQL)")
    p.take("FOR")
    p.take("EACH")
    ent_start = p.i
    entity, _pk, _ = p.ref()
    pk_tok = p.toks[ent_start + 2]
    entity_filter = None
    if p.at("WHERE"):
        p.i += 1
        entity_filter = _split_filter(p, p.condition(entity, allow_agg=True))
    if p.at("ASSUMING"):
        raise p.error("ASSUMING is not supported in v1")
    if p.tok.kind != "eof":
        raise p.error("expected the end of the query")
    if static is not None and static[0] != entity:
        raise p.error(f"a static target must be a column of the entity '{entity}'", static[2])
    task = infer_task(agg, cast)
    if task is None:
        table, column = (agg.table, agg.column) if agg else (entity, static[1])  # type: ignore[index]
        stype = column_stype(graph, table, column, name)
        if static is not None and stype == "boolean":  # a boolean expression: binary
            cast, task = BOOLEAN_CAST, "binary"
        elif stype in ("categorical", "text", "boolean", "key"):
            task = "multiclass"
        else:
            task = "regression"
    target = Target(
        name=name,
        entity=entity,
        kind="aggregate" if agg else "static",
        task=task,
        aggregate=agg,
        static=None if static is None else static[1],
        cast=cast,
        entity_filter=entity_filter,
        top_k=top_k if top_k is not None else (10 if task == "ranking" else None),
        anchors=anchors or Anchors(),
    )
    ent = graph.table(entity) if entity in [t.name for t in graph.tables] else None
    if ent is not None and (_pk,) != ent.primary_key and _pk not in ent.primary_key:
        raise p.error(
            f"expected the primary key of '{entity}' ({', '.join(ent.primary_key)})", pk_tok
        )
    validate(target, graph)
    return target
