"""The transport contract, re-exported for plugin authors: ``from conveyor.transports.base
import Transport``. It lives in `conveyor.core.transport`, so core's producer and consumer
name it without importing a transport; this module is the documented place to import it from.
"""

from conveyor.core.transport import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    SameServer,
    Subscription,
    Transport,
    TransportOptions,
)

__all__ = [
    "MAX_DELIVERIES_REASON",
    "Capabilities",
    "SameServer",
    "Subscription",
    "Transport",
    "TransportOptions",
]
