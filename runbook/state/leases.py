"""The watcher lease: a row with an owner and an expiry, so only one `migrate watch` acts on a runbook.

A lease is taken when absent, expired, or already ours; the owner renews it well before `ttl` runs out.
A watcher that dies simply stops renewing, and the next one takes over after the expiry (`watch --wait`), or
at once after `migrate unlock` released the lease of a holder that is gone (runbook.holders tells).
"""

from __future__ import annotations

from runbook.state.base import StoreBase
from runbook.state.records import Lease


def lease_seconds(every: float) -> float:
    """How long a watcher's lease lasts when it renews it every `every` seconds: 3 rounds, at least 30 s."""
    return max(3 * every, 30.0)


class LeaseMixin(StoreBase):
    """Watcher leases."""

    def acquire_lease(self, runbook: str, owner: str, ttl: float) -> bool:
        """Take the lease for `ttl` seconds if it is free, expired or ours; True when we hold it now."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql(
                    "INSERT INTO {leases} AS l (runbook, owner, acquired_at, expires_at) "
                    "VALUES (%s, %s, now(), now() + make_interval(secs => %s)) "
                    "ON CONFLICT (runbook) DO UPDATE SET owner = excluded.owner, "
                    "acquired_at = CASE WHEN l.owner = excluded.owner THEN l.acquired_at ELSE now() END, "
                    "expires_at = excluded.expires_at "
                    "WHERE l.expires_at < now() OR l.owner = excluded.owner RETURNING owner"
                ),
                (runbook, owner, float(ttl)),
            ).fetchone()
        return row is not None

    def renew_lease(self, runbook: str, owner: str, ttl: float) -> bool:
        """Extend our lease by `ttl` seconds from now; False when it is no longer ours."""
        with self.tx() as conn:
            cur = conn.execute(
                self.sql(
                    "UPDATE {leases} SET expires_at = now() + make_interval(secs => %s) "
                    "WHERE runbook = %s AND owner = %s"
                ),
                (float(ttl), runbook, owner),
            )
            return cur.rowcount == 1

    def release_lease(self, runbook: str, owner: str) -> bool:
        """Give the lease up (only if ours); True when it was ours."""
        with self.tx() as conn:
            cur = conn.execute(
                self.sql("DELETE FROM {leases} WHERE runbook = %s AND owner = %s"), (runbook, owner)
            )
            return cur.rowcount == 1

    def lease(self, runbook: str) -> Lease | None:
        """Return the current, unexpired lease of `runbook`, if any."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql(
                    "SELECT runbook, owner, acquired_at, expires_at, "
                    "extract(epoch FROM now() - acquired_at)::float8, "
                    "extract(epoch FROM expires_at - now())::float8 FROM {leases} "
                    "WHERE runbook = %s AND expires_at >= now()"
                ),
                (runbook,),
            ).fetchone()
        return Lease(*row) if row else None

    def held_leases(self) -> dict[str, str]:
        """Every unexpired lease of this schema: {runbook: owner} (a fleet's replicas pick free ones)."""
        with self.tx() as conn:
            rows = conn.execute(
                self.sql("SELECT runbook, owner FROM {leases} WHERE expires_at >= now()")
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}
