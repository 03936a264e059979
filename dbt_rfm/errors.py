"""User-facing errors and helpers for messages that name the dbt node and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from rfm_runtime.errors import RfmError

__all__ = ["RfmError", "did_you_mean", "where"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def where(node: str, column: str | None = None) -> str:
    """Format a location as ``model 'orders', column 'customer_id'``."""
    return f"model '{node}'" + (f", column '{column}'" if column else "")
