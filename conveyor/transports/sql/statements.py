"""Every statement the SQL transport runs, built once per transport with bound parameters.

Building a SQLAlchemy statement costs more than running a cached one, and a consumer polls
an idle queue many times a second, so each statement is made once here and executed with
its parameters. Parameter names differ from column names, which SQLAlchemy reserves in
SET clauses: q (queue), lim (row limit), who (owner), pri and data (a new message's
priority and packed body), ids (expanding list of row ids),
claims (expanding list of (row id, delivery count) pairs), lease_s, delay_s and keep_s
(seconds from now), why (dead-letter reason), ch (broadcast channel), after (a broadcast id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Double,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)

from conveyor.core.transport import MAX_DELIVERIES_REASON
from conveyor.transports.sql.schema import DEAD, HELD, READY, DatabaseNow


class Statements:
    def __init__(self, table: Table, broadcasts: Table, max_deliveries: int) -> None:
        self.table = table
        c, now = table.c, DatabaseNow()
        queue = c.queue == bindparam("q")
        due = (queue, c.state == READY, c.due <= now)
        expired = (queue, c.state == HELD, c.lease_until < now)
        dead = (queue, c.state == DEAD)
        limit = bindparam("lim", type_=Integer())
        seconds: Double[float] = Double()

        # Executed with one parameter set per message: SQLAlchemy sends a batch as one
        # multi-row INSERT ("insertmanyvalues", which needs RETURNING; without it PyMySQL
        # rewrites the batch itself), compiled once.
        self.insert = insert(table).values(
            queue=bindparam("q"),
            state=READY,
            priority=bindparam("pri"),
            due=now + bindparam("delay_s", type_=seconds),
            deliveries=0,
            body=bindparam("data"),
        )
        self.insert_returning = self.insert.returning(c.id)

        self.probe = select(exists().where(*due), exists().where(*expired))
        self.size = select(func.count()).where(*due)
        self.purge = delete(table).where(*due)
        ready = and_(c.state == READY, c.due <= now)

        def number(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        self.counts = select(
            number(ready),
            number(and_(c.state == READY, c.due > now)),
            number(c.state == HELD),
            number(c.state == DEAD),
            now - func.min(case((ready, c.due), else_=None)),
        ).where(queue)
        self.purge_dead = delete(table).where(*dead)
        # Held rows stay until their holder settles them, as they would on any broker.
        self.delete_queue = delete(table).where(queue, c.state.in_((READY, DEAD)))

        # -- claiming: pick due rows in delivery order, mark them held with a lease.
        self.claimed_columns = (c.id, c.priority, c.due, c.deliveries, c.body)
        self.pick = (
            select(*self.claimed_columns)
            .where(*due)
            .order_by(c.priority.desc(), c.due, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        taken = {
            "state": HELD,
            "owner": bindparam("who"),
            "lease_until": now + bindparam("lease_s", type_=seconds),
            "deliveries": c.deliveries + 1,
        }
        picked = self.pick.with_only_columns(c.id).cte("picked")
        self.claim = (
            update(table).where(c.id == picked.c.id).values(taken).returning(*self.claimed_columns)
        )
        """One statement for databases with UPDATE ... RETURNING (PostgreSQL, SQLite)."""
        self.take = update(table).where(c.id.in_(bindparam("ids", expanding=True))).values(taken)
        """The second half of `pick` then `take`, for MySQL."""

        # -- releasing: rows whose holder is gone go back to READY (their due unchanged, so
        # ahead of later messages) or, once delivered max_deliveries times, to the dead.
        spent = c.deliveries >= max_deliveries
        released: dict[str, Any] = {
            "state": case((spent, DEAD), else_=READY),
            "reason": case((spent, MAX_DELIVERIES_REASON), else_=None),
            "dead_at": case((spent, now), else_=None),
            "owner": None,
            "lease_until": None,
        }
        self.reap = update(table).where(*expired).values(released)
        held = (c.id.in_(bindparam("ids", expanding=True)), c.owner == bindparam("who"))
        self.release = update(table).where(*held, c.state == HELD).values(released)
        self.renew = (
            update(table)
            .where(*held, c.state == HELD)
            .values(lease_until=now + bindparam("lease_s", type_=seconds))
        )

        # -- settling claims, each identified by row id, owner and delivery count. The
        # plain `id IN` lets SQLite use the primary key; the pairs make each claim exact.
        claims = (
            c.id.in_(bindparam("ids", expanding=True)),
            tuple_(c.id, c.deliveries).in_(bindparam("claims", expanding=True)),
            c.owner == bindparam("who"),
            c.state == HELD,
        )
        unheld: dict[str, Any] = {"owner": None, "lease_until": None}
        self.ack = delete(table).where(*claims)
        self.requeue = update(table).where(*claims).values(state=READY, **unheld)
        self.requeue_later = (
            update(table)
            .where(*claims)
            .values(state=READY, due=now + bindparam("delay_s", type_=seconds), **unheld)
        )
        self.dead_letter = (
            update(table)
            .where(*claims)
            .values(state=DEAD, reason=bindparam("why"), dead_at=now, **unheld)
        )

        # -- dead letters
        self.dead_letters = (
            select(c.body, c.reason, c.dead_at, c.deliveries)
            .where(*dead)
            .order_by(c.dead_at, c.id)
            .limit(limit)
        )
        self.dead_bodies = select(c.id, c.body).where(*dead)
        revived = {"state": READY, "deliveries": 0, "due": now, "reason": None, "dead_at": None}
        self.replay_all = update(table).where(*dead).values(revived)
        self.replay_ids = (
            update(table).where(*dead, c.id.in_(bindparam("ids", expanding=True))).values(revived)
        )

        # -- broadcasts (broadcast.py)
        b = broadcasts.c
        channel = b.channel == bindparam("ch")
        self.broadcast = insert(broadcasts).values(
            channel=bindparam("ch"), at=now, body=bindparam("data")
        )
        self.expire_broadcasts = delete(broadcasts).where(
            b.at < now - bindparam("keep_s", type_=seconds)
        )
        self.recent_broadcasts = select(b.id).where(channel).order_by(b.id.desc()).limit(limit)
        self.broadcasts_after = (
            select(b.id, b.body).where(channel, b.id > bindparam("after")).order_by(b.id)
        )
