"""The schedule-store contract suite: each clause of conveyor.beat.store's contract is one test.

Bind it to a store by subclassing with a `store_url` fixture:

    class TestMyStore(LeaseContract):
        @pytest.fixture(scope="class")
        @classmethod
        def store_url(cls) -> str:
            return "mystore://127.0.0.1:1234"

A store conveyor does not build from a URL binds it by overriding `make` instead: a fixture
returning ``make(namespace=None) -> ScheduleStore`` (a new store object on each call, all on
the same server, closed at the end of the test; see `closing_factory`).

Every test works in a namespace of its own, so a shared server needs no cleaning. A clause
whose capability the store declares it lacks (`expires_unrenewed`) is reported
"n/a: <reason>" (a pytest skip carrying that text), never a pass. The clauses about expiry
run on a controlled clock for stores that expire leases on the callers' clock
(`expires_on_caller_clock`: nothing to wait for) and on real time for the others.

L1 one holder at a time · L2 renewal keeps the lease · L3 release hands over at once ·
L4 an unrenewed lease expires · L5 a dead holder is replaced within the lease ·
L6 a tick is claimed once, in order · L7 racing claims: exactly one wins ·
L8 state outlives the store object · L9 namespaces and entry names are kept apart
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from conveyor.beat.store import ScheduleStore
from conveyor.beat.stores import open_store
from conveyor.testing.suite_support import closing_factory, not_applicable
from conveyor.testing.waiting import wait_until

TTL = 1.0
"""The lease of the clauses about expiry and renewal (seconds): short, for CI's sake."""
LONG = 60.0
"""The lease of the other clauses: no loaded machine is slow enough to let it expire."""
CLOCK_GRAIN = 0.01
"""How far apart the test's clock and a store's may read the same instant (seconds): a
server's millisecond expiry, the controlled clock's sums of float steps."""
clause = pytest.mark.clause
MakeStore = Callable[..., ScheduleStore]


class Clock:
    """Seconds since the epoch, real or controlled (`sleep` then only moves it on)."""

    def __init__(self, controlled: bool) -> None:
        self.controlled = controlled
        self._now = time.time()

    def now(self) -> float:
        return self._now if self.controlled else time.time()

    def sleep(self, seconds: float) -> None:
        if self.controlled:
            self._now += seconds
        else:
            time.sleep(seconds)

    def until(self, condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
        """`condition` true within `timeout` seconds of this clock, polled every `step`."""
        if not self.controlled:
            return wait_until(condition, timeout, step)
        deadline = self._now + timeout
        while not condition():
            if self._now >= deadline:
                return False
            self._now += step
        return True


class LeaseContract:
    """The contract every schedule store passes. Subclasses provide `store_url`."""

    @pytest.fixture(scope="class")
    @classmethod
    def store_url(cls) -> str:
        raise NotImplementedError("bind the suite to a store with a store_url fixture")

    @pytest.fixture
    def namespace(self) -> str:
        return f"lease-suite-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def make(self, store_url: str, namespace: str) -> Iterator[MakeStore]:
        """``make(namespace=None)``: a store object (a beat process's connection)."""

        def build(other: str | None = None) -> ScheduleStore:
            return open_store(store_url, other or namespace, lease_timeout=LONG)

        with closing_factory(build) as factory:
            yield factory

    @clause("L1", "one holder at a time")
    def test_one_holder_at_a_time(self, make: MakeStore) -> None:
        first, second = make(), make()
        now = time.time()
        assert first.leader(now) is None
        assert first.acquire("a", LONG, now)
        assert not second.acquire("b", LONG, now)
        assert second.leader(time.time()) == "a"
        assert first.acquire("a", LONG, time.time()), "the holder itself is refused"

    @pytest.fixture
    def clock(self, make: MakeStore) -> Clock:
        """Time for the clauses about expiry: a controlled clock for stores that expire leases
        on the caller's clock (nothing to wait for), the real one for the others."""
        return Clock(controlled=make().expires_on_caller_clock)

    @clause("L2", "renewal keeps the lease")
    def test_renewal_keeps_the_lease(self, make: MakeStore, clock: Clock) -> None:
        holder, other = make(), make()
        if not holder.expires_unrenewed:
            not_applicable("the lease is the holder's session: renewing is staying alive")
        ttl = TTL * 1.2
        assert holder.acquire("a", ttl, clock.now())
        clock.sleep(ttl * 0.6)
        assert holder.acquire("a", ttl, clock.now())
        clock.sleep(ttl * 0.6)  # past the first lease's end, within the renewed one
        assert not other.acquire("b", ttl, clock.now())
        assert other.leader(clock.now()) == "a"

    @clause("L3", "release hands over at once")
    def test_release_hands_over_at_once(self, make: MakeStore) -> None:
        holder, other = make(), make()
        assert holder.acquire("a", LONG, time.time())
        other.release("b")  # not the holder: nothing happens
        assert other.leader(time.time()) == "a"
        holder.release("a")
        assert other.leader(time.time()) is None
        assert other.acquire("b", LONG, time.time())

    @clause("L4", "an unrenewed lease expires")
    def test_an_unrenewed_lease_expires(self, make: MakeStore, clock: Clock) -> None:
        holder, other = make(), make()
        if not holder.expires_unrenewed:
            not_applicable("the lease is the holder's session: it ends when the holder dies")
        started = clock.now()
        assert holder.acquire("a", TTL, clock.now())
        assert not other.acquire("b", TTL, clock.now())
        assert clock.until(lambda: other.acquire("b", TTL, clock.now()), TTL * 4)
        assert clock.now() - started >= TTL * 0.9, "expired before its time"
        assert not holder.acquire("a", TTL, clock.now()), "the old holder took it back"

    @clause("L5", "a dead holder is replaced within the lease")
    def test_a_dead_holder_is_replaced_within_the_lease(
        self, make: MakeStore, clock: Clock
    ) -> None:
        holder, other = make(), make()
        assert holder.acquire("a", TTL, clock.now())
        granted = clock.now()  # the store set the lease before it answered
        holder.close()  # dies without releasing
        # The bound is asserted on when each refused attempt began, so a slow call or a
        # starved thread on a loaded machine cannot fail it (nor hide a lease held too long).
        ended = granted + holder.longest_lease(TTL) if holder.expires_unrenewed else clock.now()
        refused: list[float] = []

        def replaced() -> bool:
            began = clock.now()
            if other.acquire("b", TTL, began):
                return True
            refused.append(began)
            return False

        assert clock.until(replaced, LONG), "the dead holder was never replaced"
        late = [began - ended for began in refused if began > ended + CLOCK_GRAIN]
        assert not late, f"refused {max(late):.3f} s after the dead holder's lease ended"
        assert other.leader(clock.now()) == "b"

    @clause("L6", "a tick is claimed once, in order")
    def test_a_tick_is_claimed_once_in_order(self, make: MakeStore) -> None:
        store = make()
        assert store.last_run("e") is None
        assert store.claim("e", 1000.25)
        assert not store.claim("e", 1000.25), "the same tick claimed twice"
        assert not store.claim("e", 999.0), "an earlier tick after a later one"
        assert store.last_run("e") == 1000.25
        assert store.claim("e", 1001.125)
        assert store.last_run("e") == 1001.125
        precise = 1_767_225_600.123456
        assert store.claim("e", precise) and store.last_run("e") == precise

    @clause("L7", "racing claims: exactly one wins")
    def test_racing_claims_exactly_one_wins(self, make: MakeStore) -> None:
        stores = [make() for _ in range(6)]
        for store in stores:
            store.last_run("warm-up")  # connect (and create tables) before the race
        wins: list[tuple[int, float]] = []
        lock = threading.Lock()
        start = threading.Barrier(len(stores))

        def race(index: int, store: ScheduleStore) -> None:
            start.wait()
            for tick in (1.0, 2.0, 3.0, 4.0):
                if store.claim("raced", tick):
                    with lock:
                        wins.append((index, tick))

        threads = [threading.Thread(target=race, args=pair) for pair in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        claimed = sorted(tick for _, tick in wins)
        assert len(claimed) == len(set(claimed)), f"a tick claimed twice: {wins}"
        assert claimed[-1] == 4.0 and stores[0].last_run("raced") == 4.0

    @clause("L8", "state outlives the store object")
    def test_state_outlives_the_store_object(self, make: MakeStore) -> None:
        first = make()
        assert first.claim("kept", 42.5)
        first.close()
        again = make()
        assert again.last_run("kept") == 42.5
        assert not again.claim("kept", 42.5)

    @clause("L9", "namespaces and entry names are kept apart")
    def test_namespaces_and_entry_names_are_kept_apart(
        self, make: MakeStore, namespace: str
    ) -> None:
        mine, theirs = make(), make(f"{namespace}-other")
        assert mine.acquire("a", LONG, time.time())
        assert theirs.acquire("b", LONG, time.time()), "one namespace's lease blocks another"
        names = ["a/b", "a b", "A", "a", "ünïcode ✓", "..", "x" * 300, "x" * 301]
        for value, name in enumerate(names, start=1):
            assert mine.claim(name, float(value)), name
        for value, name in enumerate(names, start=1):
            assert mine.last_run(name) == float(value), name
        assert theirs.last_run("a") is None
