"""Whether this process should receive traffic: starting -> serving -> draining.

/readyz answers from this. gunicorn.conf.py flips a worker to draining when it receives
SIGTERM, so a load balancer polling readiness takes the instance out while in-flight
requests finish.
"""

from __future__ import annotations

import enum
import threading


class Phase(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"


class Lifecycle:
    def __init__(self) -> None:
        self._phase = Phase.STARTING
        self._lock = threading.Lock()

    @property
    def phase(self) -> Phase:
        return self._phase

    def mark_serving(self) -> None:
        with self._lock:
            if self._phase is Phase.STARTING:
                self._phase = Phase.SERVING

    def begin_draining(self) -> None:
        # Draining is one-way: a process that has been told to stop never serves again.
        with self._lock:
            self._phase = Phase.DRAINING
