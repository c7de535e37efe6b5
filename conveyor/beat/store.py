"""The schedule store: where beat processes meet. One leader lease and, per entry, the last
fire time accounted for. The contract every store keeps (conveyor.testing.lease_suite proves
each clause against the real store):

* `acquire(holder, ttl, now)` takes the lease when it is free or expired, or renews it when
  `holder` has it; True means `holder` leads until `ttl` seconds from now unless it renews.
  At most one holder has an unexpired lease. Stores that expire leases on their own clock
  (Redis: the key's TTL; ZooKeeper: the session, whose timeout is the lease) ignore `now`;
  SQL and memory compare the callers' clocks, so beat hosts must agree on the time to well
  within the lease (NTP does).
* `release(holder)` ends `holder`'s lease at once (a clean shutdown hands over without
  waiting for expiry); releasing a lease one does not hold does nothing.
* `claim(entry, fire_time)` is the idempotency key of a tick: it advances the entry's last
  fire time to `fire_time` and returns True only if that is later than the stored one, as
  one atomic step. So among any number of processes, leaders or not, old or new, each
  (entry, fire time) is claimed once, and a restarted beat goes on from the stored time.
* `last_run(entry)` reads the stored time (None: never seen); stored times survive the
  process and every reconnect.

Times are seconds since the epoch (floats). Stores are safe to use from several threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class ScheduleStore(ABC):
    """A leader lease and the last fire time of every entry, under one namespace."""

    expires_unrenewed: bool = True
    """False where the lease is a session that lives as long as its holder's process
    (ZooKeeper): there a lease ends when the holder dies, not when it stops renewing."""
    expires_on_caller_clock: bool = False
    """True where lease expiry compares the `now` the callers pass (SQL, memory), rather than
    the server's clock or a session."""

    def longest_lease(self, ttl: float) -> float:
        """How long a lease taken for `ttl` seconds may outlive a holder that stopped renewing:
        `ttl`, or longer where the server expires coarsely (memcached). Followers may have to
        wait this long; the lease suite asserts that none waits longer."""
        return ttl

    @abstractmethod
    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        """Take or renew the lease for `ttl` seconds; True when `holder` now holds it."""

    @abstractmethod
    def release(self, holder: str) -> None:
        """End `holder`'s lease now, if it holds it."""

    @abstractmethod
    def leader(self, now: float) -> str | None:
        """Who holds an unexpired lease, if anyone."""

    @abstractmethod
    def claim(self, entry: str, fire_time: float) -> bool:
        """Advance `entry`'s last fire time to `fire_time` if later; True if it did."""

    @abstractmethod
    def last_run(self, entry: str) -> float | None:
        """The stored last fire time of `entry`, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (not the lease: a closed store's lease just expires)."""
