"""Sweeper: recovery that must run once across the fleet, in whichever process leads.

Every API process runs a Sweeper thread; each round, it tries to take (or renew) the `sweeper`
lease in the database, and only the holder sweeps: lapsed leases, PENDING re-dispatch, lost
callbacks, silent workers, and (each minute) a recount of the queue-depth counter. When the
leader dies its lease lapses and another process takes over within one lease.
"""

from __future__ import annotations

import logging
import threading
import time

from vidmorph.service import recover, runway
from vidmorph.service.context import AppContext

log = logging.getLogger(__name__)

LEASE_NAME = "sweeper"
#: a worker silent this long is forgotten (it was killed without unregistering)
FORGET_WORKERS_AFTER_S = 3600.0
#: how often the leader recounts the in-flight counter (it locks the row while counting)
RECONCILE_EVERY_S = 60.0


class Sweeper:
    def __init__(self, ctx: AppContext, owner: str) -> None:
        self.ctx, self.owner = ctx, owner
        self.leading = False
        self._reconciled_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vidmorph-sweeper", daemon=True)

    @property
    def lease_s(self) -> float:
        return max(3 * self.ctx.settings.recover_interval_s, 2.0)

    def sweep_once(self) -> bool:
        """One round; True when this process led all of it. The lease is renewed before each
        phase, so a slow phase (a broker that answers slowly) cannot run on past the lease
        while another process, having taken over, sweeps the same rows."""
        phases = (
            recover.sweep_lapsed,
            recover.sweep_lost_callbacks,
            recover.resubmit_pending,
            runway.sweep_throttled,
            lambda ctx: ctx.workers.prune(FORGET_WORKERS_AFTER_S),
            self._reconcile,
        )
        for phase in phases:
            self.leading = self.ctx.leases.acquire(LEASE_NAME, self.owner, self.lease_s)
            if not self.leading:
                return False
            phase(self.ctx)
        return True

    def _reconcile(self, ctx: AppContext) -> None:
        now = time.monotonic()
        if self._reconciled_at is None or now - self._reconciled_at >= RECONCILE_EVERY_S:
            recover.reconcile_queue_depth(ctx)
            self._reconciled_at = now

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        first = True
        while first or not self._stop.wait(self.ctx.settings.recover_interval_s):
            first = False
            try:
                self.sweep_once()
            except Exception:
                log.exception("recovery sweep failed; retrying")

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                return  # still sweeping: let its lease run out rather than hand it over now
        if self.leading:
            try:
                self.ctx.leases.release(LEASE_NAME, self.owner)
            except Exception:
                log.exception("could not release the sweeper lease")
