"""The 30-second tour: publish, fetch, ack, retry, delay and dead-letter on one transport.

python examples/hello.py                       # the in-process memory transport
python examples/hello.py redis://localhost:6379/0
"""

from __future__ import annotations

import sys
import time

from conveyor import Message, create_transport

url = sys.argv[1] if len(sys.argv) > 1 else "memory://"
with create_transport(url, max_deliveries=2) as transport:
    print(f"transport: {transport}")
    transport.publish_many("hello", [Message(f"job {i}".encode()) for i in range(3)])
    transport.publish("hello", Message(b"job later"), delay=1.0)

    for delivery in transport.fetch("hello", max_messages=10, timeout=1.0):
        print(f"  got {delivery.message.body.decode()!r} (delivery {delivery.delivery_count})")
        if delivery.message.body == b"job 1":
            delivery.nack(requeue=True)  # comes back with its count raised
        else:
            delivery.ack()

    started = time.monotonic()
    while time.monotonic() - started < 3:
        for delivery in transport.fetch("hello", max_messages=10, timeout=0.5):
            waited = time.monotonic() - started
            print(
                f"  got {delivery.message.body.decode()!r} (delivery {delivery.delivery_count}, "
                f"after {waited:.1f} s)"
            )
            if delivery.message.body == b"job 1":
                delivery.nack(requeue=False, reason="gave up on job 1")
            else:
                delivery.ack()

    for dead in transport.dead_letters("hello"):
        print(f"  dead letter: {dead.message.body.decode()!r}, reason: {dead.reason!r}")
    transport.delete("hello")
