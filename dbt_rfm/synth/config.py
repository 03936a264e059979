"""SynthConfig: the knobs of the synthetic database generator, lifted once from a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dbt_rfm.errors import RfmError, did_you_mean


@dataclass(frozen=True)
class SynthConfig:
    """Ranges the generator draws from; every draw is made with the seed's generator.

    Attributes:
        min_tables: fewest tables in a database (at least 2: an entity and an event table).
        max_tables: most tables.
        min_entities: fewest rows of a main entity table (dimension tables are smaller).
        max_entities: most rows of a main entity table.
        min_events: fewest event rows in a database (expected, over all event tables).
        max_events: most event rows (a hard cap: larger draws are thinned).
        min_span_days: shortest time span of the events.
        max_span_days: longest time span.
        start: earliest possible start of the span (ISO date); the start moves up to 3 years.
        latent_dim: number of latent factors per row that drive every value.
        max_null_rate: largest null rate of a value column (half of the columns have none).
        self_link_prob: chance that a main entity table links to itself (``referred_by``).
        composite_key_prob: chance that an entity table gets a two-column primary key.
        text_key_prob: chance that a table's key is text (``varchar``) rather than ``bigint``.
        second_parent_prob: chance that an event table links to a second parent.
        child_event_prob: chance that an event table is a child of another event table
            (order lines of orders) rather than of an entity table.
    """

    min_tables: int = 2
    max_tables: int = 6
    min_entities: int = 200
    max_entities: int = 3000
    min_events: int = 5_000
    max_events: int = 50_000
    min_span_days: int = 365
    max_span_days: int = 730
    start: str = "2016-01-01"
    latent_dim: int = 4
    max_null_rate: float = 0.2
    self_link_prob: float = 0.25
    composite_key_prob: float = 0.1
    text_key_prob: float = 0.4
    second_parent_prob: float = 0.5
    child_event_prob: float = 0.3

    def __post_init__(self) -> None:
        for lo, hi in (
            ("min_tables", "max_tables"),
            ("min_entities", "max_entities"),
            ("min_events", "max_events"),
            ("min_span_days", "max_span_days"),
        ):
            a, b = getattr(self, lo), getattr(self, hi)
            if not 0 < a <= b:
                raise RfmError(f"SynthConfig: expected 0 < {lo} <= {hi}, found {a} and {b}")
        if self.min_tables < 2 or self.max_tables > 8:
            raise RfmError(
                f"SynthConfig: tables must lie in [2, 8], found "
                f"{self.min_tables}..{self.max_tables}"
            )
        if self.min_entities < 20:
            raise RfmError(f"SynthConfig: min_entities must be >= 20, found {self.min_entities}")
        if self.latent_dim < 1:
            raise RfmError(f"SynthConfig: latent_dim must be >= 1, found {self.latent_dim}")
        for name in (
            "max_null_rate",
            "self_link_prob",
            "composite_key_prob",
            "text_key_prob",
            "second_parent_prob",
            "child_event_prob",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise RfmError(f"SynthConfig: {name} must lie in [0, 1], found {v}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SynthConfig:
        """Lift a mapping (YAML, JSON); unknown keys are errors that suggest the right key."""
        names = [f.name for f in fields(cls)]
        for key in raw:
            if key not in names:
                raise RfmError(
                    f"SynthConfig: unknown key '{key}'{did_you_mean(str(key), names)}; "
                    f"allowed keys: {', '.join(names)}"
                )
        return cls(**dict(raw))
