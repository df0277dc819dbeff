"""Prometheus metrics of the operator itself: reconcile counts, errors and durations.

Served by `handlers/lifecycle` on SHOAL_OPERATOR_METRICS_PORT (default 8000, 0 = off).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

RECONCILES = Counter("shoal_operator_reconciles_total", "Reconcile passes", ["kind", "result"])
DURATION = Histogram("shoal_operator_reconcile_seconds", "Reconcile pass duration", ["kind"])


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    except Exception:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
    finally:
        DURATION.labels(kind).observe(time.monotonic() - start)
