"""How long each phase measures: the full run (< 15 minutes) or `--quick` (a smoke run of about 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    """Windows, repetitions and levels of one bench run."""

    quick: bool
    footprint_seconds: float  # each footprint window: RSS after probing at 1 s, then idle CPU at the default
    scrape_every: float  # how often the footprint subjects are scraped (a Prometheus server and an ALB)
    cold_starts: int  # runs per subject; the median is reported
    wrk_seconds: int
    concurrencies: tuple[int, ...]
    detection_intervals: tuple[float, ...]
    cost_scale: float  # cadences divided by this for the cost run (see bench.cost)
    cost_seconds: float
    scale_targets: tuple[int, ...]
    scale_seconds: float
    soak_warmup: float  # seconds of probing before the soak's first reading
    soak_seconds: float  # the soak's window: RSS growth over it, at a 1 s interval

    @classmethod
    def full(cls) -> Settings:
        """The figures docs/performance.md quotes."""
        return cls(
            quick=False,
            footprint_seconds=60.0,
            scrape_every=10.0,
            cold_starts=5,
            wrk_seconds=10,
            concurrencies=(10, 50, 100),
            detection_intervals=(10.0, 1.0),
            cost_scale=100.0,
            cost_seconds=90.0,
            scale_targets=(1, 10, 50),
            scale_seconds=30.0,
            soak_warmup=60.0,
            soak_seconds=600.0,
        )

    @classmethod
    def smoke(cls) -> Settings:
        """Every phase, with short windows: proves the bench works, not what the figures are."""
        return cls(
            quick=True,
            footprint_seconds=10.0,
            scrape_every=5.0,
            cold_starts=2,
            wrk_seconds=2,
            concurrencies=(10, 50),
            detection_intervals=(1.0,),
            cost_scale=100.0,
            cost_seconds=25.0,
            scale_targets=(1, 10),
            scale_seconds=5.0,
            soak_warmup=5.0,
            soak_seconds=15.0,
        )
