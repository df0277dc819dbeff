"""The chaos scheduler: against a running `shoal cluster run`, at seeded random intervals, one
event at a time on a random role process (coordinator, streaming node, query node, index node,
proxy), through the supervisor's admin port and plain signals:

- `kill`: SIGKILL; the supervisor starts it again, as Kubernetes would;
- `pause`: SIGSTOP for `node_lease_s` + 5 s, then SIGCONT: its etcd lease lapses while it
  cannot notice, as in a network partition (the others must fence it; it must step down);
- `restart`: `shoal cluster restart NAME` (replacement first, then the old one drains);
- `scale`: `shoal cluster scale --query-nodes 3`, then 1, then back to the starting count.

After each event it waits until every role process serves again before the next interval, so
the events test recovery one at a time. Each event is recorded with its wall-clock time, its
offset from the start, its target and how long it took.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoal.cluster.supervisor import admin_call

ROLES = ("coord", "streaming", "query", "index", "proxy")
EVENTS = ("kill", "pause", "restart", "scale")
WEIGHTS = (4, 2, 2, 1)  # kills are the commonest, as in Milvus's chaos schedules
PAUSE_S = 5 + 5  # node_lease_s (5 s, the default) + 5 s
RECOVER_TIMEOUT_S = 300.0
SETTLE_S = 20.0


@dataclass
class Event:
    kind: str
    target: str
    at: str  # UTC wall clock
    offset_s: float  # from the start of the chaos
    took_s: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass
class Scheduler:
    data_dir: Path
    seed: int
    seconds: float
    interval_s: tuple[float, float] = (15.0, 40.0)
    plan: list[str] | None = None  # "kind" or "kind:role", all run in order (`seconds` is then a minimum); None: drawn
    query_nodes: int = 2  # the count `scale` returns to
    events: list[Event] = field(default_factory=list)
    began: float = 0.0
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.began = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="chaos-scheduler", daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        plan = list(self.plan) if self.plan is not None else None
        while not self._stop.is_set():
            wait = rng.uniform(*self.interval_s)
            if plan is not None and not plan:
                break
            if plan is None and time.monotonic() + wait - self.began > self.seconds:
                break
            if self._stop.wait(wait):
                break
            kind, _, role = (plan.pop(0) if plan is not None else rng.choices(EVENTS, WEIGHTS)[0]).partition(":")
            roles = sorted(self._roles())
            role = role or rng.choice(ROLES)  # the role first, so that each is as likely whatever its count
            target = rng.choice([n for n in roles if n.rsplit("-", 1)[0] == role] or roles)
            getattr(self, f"_{kind}")(target)
            time.sleep(1.0)  # the supervisor notices a death on its next poll
            self._recovered()
        remaining = self.seconds - (time.monotonic() - self.began)
        self._stop.wait(max(SETTLE_S, remaining))  # the checkers run on to the end, and a while after the last event

    # ---------------------------------------------------------------- events

    def _record(self, kind: str, target: str, work: Any) -> None:
        started = time.monotonic()
        event = Event(kind, target, datetime.now(UTC).strftime("%H:%M:%S"), round(started - self.began, 1))
        try:
            event.detail = str(work() or "")[:300]
        except Exception as e:
            event.error = f"{type(e).__name__}: {e}"[:300]
        event.took_s = round(time.monotonic() - started, 1)
        self.events.append(event)
        print(f"chaos: {event}", flush=True)

    def _kill(self, target: str) -> None:
        self._record("kill", target, lambda: os.kill(self._roles()[target], signal.SIGKILL))

    def _pause(self, target: str) -> None:
        def pause() -> str:
            pid = self._roles()[target]
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(PAUSE_S)
            finally:
                os.kill(pid, signal.SIGCONT)
            return f"SIGSTOP {PAUSE_S} s, SIGCONT"

        self._record("pause", target, pause)

    def _restart(self, target: str) -> None:
        def restart() -> str:
            answer = admin_call(self.data_dir, "POST", f"/restart?name={target}")
            return f"by {answer['by']}, up in {answer['replacement_up_s']} s, drained in {answer['drain_s']} s"

        self._record("restart", target, restart)

    def _scale(self, target: str) -> None:
        for count in (3, 1, self.query_nodes):
            def scale(count: int = count) -> str:
                steps = admin_call(self.data_dir, "POST", f"/scale?role=query&count={count}")["steps"]
                return "; ".join(", ".join(f"{k} {v}" for k, v in s.items()) for s in steps)

            self._record("scale", f"query nodes -> {count}", scale)
            self._recovered()

    # ---------------------------------------------------------------- the cluster's processes

    def _status(self) -> list[dict[str, Any]]:
        return admin_call(self.data_dir, "GET", "/status")["processes"]

    def _roles(self) -> dict[str, int]:
        return {p["name"]: p["pid"] for p in self._status() if p["name"].rsplit("-", 1)[0] in ROLES}

    def _recovered(self) -> None:
        """Wait until every role process is alive and serving (a killed one restarted)."""
        deadline = time.monotonic() + RECOVER_TIMEOUT_S
        down: list[str] = []
        while time.monotonic() < deadline and not self._stop.is_set():
            procs = [p for p in self._status() if p["name"].rsplit("-", 1)[0] in ROLES]
            down = [p["name"] for p in procs if not (p["alive"] and p["ready"])]
            if not down:
                return
            time.sleep(0.5)
        if down:  # the next event goes ahead; the report names what did not come back
            def not_recovered() -> None:
                raise RuntimeError(f"not serving {RECOVER_TIMEOUT_S:.0f} s after the last event")

            self._record("recovery", ", ".join(down), not_recovered)
