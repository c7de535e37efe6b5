"""Every exception a task, a worker or a client meets, importable as Celery code expects
(``from conveyor.exceptions import Ignore, Reject, SoftTimeLimitExceeded``).

The classes live where they belong (`conveyor.app.exceptions` for the task layer,
`conveyor.core.errors` for messaging); this module gathers them under one name, with
Celery's names as aliases where conveyor's own name differs.
"""

from __future__ import annotations

from conveyor.app.exceptions import (
    AlreadyRegistered,
    Ignore,
    InvalidTaskError,
    InvalidTaskOption,
    MaxDeliveriesExceeded,
    MaxRetriesExceededError,
    NotRegistered,
    QueueNotFound,
    Reject,
    ResultIgnored,
    Retry,
    SoftTimeLimitExceeded,
    TaskError,
    TaskPredicate,
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,
    WorkerLostError,
    WorkerShutdown,
    WorkerTerminate,
)
from conveyor.app.rate_limit import InvalidRateLimit
from conveyor.app.signing import InvalidSignature
from conveyor.core.errors import (
    BackendError,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ContentDisallowed,
    ConveyorError,
    DecodeError,
    EncodeError,
    PublishFailed,
    PublishTimeout,
    SerializationError,
)

CeleryError = ConveyorError
ImproperlyConfigured = ConfigurationError
OperationalError = BrokerError
SecurityError = ContentDisallowed
RetryTaskError = Retry  # Celery's old name of Retry

__all__ = [
    "AlreadyRegistered",
    "BackendError",
    "BrokerError",
    "BrokerUnavailable",
    "CeleryError",
    "ConfigurationError",
    "ContentDisallowed",
    "ConveyorError",
    "DecodeError",
    "EncodeError",
    "Ignore",
    "ImproperlyConfigured",
    "InvalidRateLimit",
    "InvalidSignature",
    "InvalidTaskError",
    "InvalidTaskOption",
    "MaxDeliveriesExceeded",
    "MaxRetriesExceededError",
    "NotRegistered",
    "OperationalError",
    "PublishFailed",
    "PublishTimeout",
    "QueueNotFound",
    "Reject",
    "ResultIgnored",
    "Retry",
    "RetryTaskError",
    "SecurityError",
    "SerializationError",
    "SoftTimeLimitExceeded",
    "TaskError",
    "TaskPredicate",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
    "WorkerShutdown",
    "WorkerTerminate",
]
