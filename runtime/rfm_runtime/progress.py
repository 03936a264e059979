"""Progress of a scoring run: anchors done/total, anchors/s, ETA; logged and/or called back.

Reports go to the ``rfm_runtime`` logger at INFO, to ``print`` when ``echo`` is set, and to an
optional callback. What dbt-duckdb 1.11 shows of a Python model (checked): ``print`` reaches
the console but not ``logs/dbt.log``; stdlib logging below WARNING is dropped; a dbt event
reaches both. So a dbt Python model passes a callback that fires one (dbt is there; the
runtime does not import it)::

    from dbt_common.events.functions import fire_event
    from dbt_common.events.types import Note
    progress = lambda p: fire_event(Note(msg=f"rfm: {p.message()}"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("rfm_runtime")


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Attributes:
        what: the run, e.g. ``"scoring plane_delayed"``.
        done: anchors done so far.
        total: anchors in all, when known.
        elapsed_s: seconds since the run started.
    """

    what: str
    done: int
    total: int | None
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Anchors per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, when the total is known."""
        if self.total is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def message(self) -> str:
        """``scoring t: 3,200/10,000 anchors (32%), 850 anchors/s, ETA 8s``."""
        if self.total:
            share = f"{self.done:,}/{self.total:,} anchors ({100 * self.done / self.total:.0f}%)"
        else:
            share = f"{self.done:,} anchors"
        eta = "" if self.eta_s is None else f", ETA {self.eta_s:.0f}s"
        return f"{self.what}: {share}, {self.rate:,.0f} anchors/s{eta}"


class ProgressTracker:
    """Counts anchors and reports at most every ``every_s`` seconds, and once at the end."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        callback: Callable[[Progress], None] | None = None,
        every_s: float = 10.0,
        echo: bool = False,
    ) -> None:
        self.what, self.total, self.callback = what, total, callback
        self.every_s, self.echo = every_s, echo
        self.done = 0
        self.start = time.monotonic()
        self.last = self.start

    def update(self, n: int) -> None:
        """Add ``n`` anchors done; report when ``every_s`` has passed since the last report."""
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._report(now)

    def finish(self) -> Progress:
        """Report the final count and return it."""
        return self._report(time.monotonic())

    def _report(self, now: float) -> Progress:
        p = Progress(self.what, self.done, self.total, now - self.start)
        log.info("rfm: %s", p.message())
        if self.echo:
            print(f"rfm: {p.message()}", flush=True)
        if self.callback is not None:
            self.callback(p)
        return p
