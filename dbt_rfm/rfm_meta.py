"""``config.meta.rfm`` of a dbt model, lifted to a frozen dataclass; ref parsing; suggestions.

Helpers of :mod:`dbt_rfm.graph_rules` whose Jinja twins are ``_rfm_parse_meta``,
``_rfm_ref_target`` and ``_rfm_did_you_mean`` in ``macros/graph/`` (same wording, same picks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_rfm.errors import RfmError

#: Keys allowed under ``config.meta.rfm``.
META_KEYS = ("available_at", "exclude", "primary_key", "stypes", "targets", "time_column")

_REF = re.compile(
    r"""^\s*ref\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]+)\3\s*)?(?:,[^)]*)?\)\s*$"""
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
        available_at: column -> the date or timestamp column holding when its value becomes
            known (a flight's delay at its departure); the cell is hidden up to that time.
        declared: True when the model has ``meta.rfm`` at all (it is then in the graph).
    """

    time_column: str | None = None
    exclude: tuple[str, ...] = ()
    stypes: Mapping[str, str] = field(default_factory=dict)
    primary_key: tuple[str, ...] | None = None
    targets: Any = None
    available_at: Mapping[str, str] = field(default_factory=dict)
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
        available_at = raw.get("available_at") or {}
        if not isinstance(available_at, Mapping) or not all(
            isinstance(v, str) for v in available_at.values()
        ):
            raise RfmError(
                f"model '{model}': meta.rfm.available_at must map column names to the date or "
                f"timestamp column that says when each becomes known; found {available_at}"
            )
        pk = raw.get("primary_key")
        return cls(
            time_column=time_column,
            exclude=_names(model, "exclude", raw.get("exclude")) or (),
            stypes=dict(stypes),
            primary_key=_names(model, "primary_key", pk) if pk is not None else None,
            targets=raw.get("targets"),
            available_at=dict(available_at),
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
