"""conveyor's exception hierarchy.

Every error a transport, backend or codec raises is one of these: client-library
exceptions are translated at the boundary, so user code catches conveyor errors only.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class of every error conveyor raises."""


class ConfigurationError(ConveyorError, ValueError):
    """Settings or URLs that cannot work; raised at construction, before any I/O."""


class InvalidURL(ConfigurationError):
    """A malformed broker or backend URL. The message names the bad part."""


class UnknownScheme(ConfigurationError):
    """No transport or backend is registered for a URL scheme."""


class MissingDependency(ConfigurationError):
    """A built-in transport or backend whose client library is not installed."""


class InvalidQueueName(ConveyorError, ValueError):
    """A queue name that breaks the shared naming rules. The message cites the rule."""


class Unsupported(ConveyorError):
    """The transport or backend does not declare the capability that was asked for."""


class MessageTooLarge(ConveyorError, ValueError):
    """A message or result over the declared size limit; nothing was sent."""


class SerializationError(ConveyorError):
    """Base class of codec errors."""


class EncodeError(SerializationError, ValueError):
    """A value that cannot be encoded with the chosen serializer, or breaks a limit."""


class DecodeError(SerializationError, ValueError):
    """A body that cannot be decoded, or breaks a size or nesting limit."""


class ContentDisallowed(SerializationError):
    """A content type outside the accept list; refused before decoding."""


class BrokerError(ConveyorError):
    """A broker refused or failed an operation."""


class BrokerUnavailable(BrokerError, ConnectionError):
    """The broker cannot be reached (refused, unknown host, down past the retry budget)."""


class AuthenticationFailed(ConveyorError):
    """The broker or result backend refused the credentials."""


class ConnectionLost(BrokerUnavailable):
    """The connection broke during an operation; its outcome is unknown.

    A publish that raises this may or may not have reached the broker: retrying it reuses
    the message id, so consumers can recognise the duplicate.
    """


class PublishFailed(BrokerError):
    """A pipelined publish the broker finally refused (nacked on every attempt) or that could
    not be republished within the retry budget; `message_ids` names the messages."""

    def __init__(self, message: str, message_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message_ids = message_ids


class PublishTimeout(ConveyorError, TimeoutError):
    """Confirms still outstanding when a flush's timeout ran out; they may still arrive."""


class DeliveryError(ConveyorError):
    """An ack or nack that cannot be carried out."""


class AlreadySettled(DeliveryError):
    """The delivery was already acked or nacked."""


class LeaseLost(DeliveryError):
    """The consumer no longer holds the message (its session or lease ended)."""


class BackendError(ConveyorError):
    """A result backend refused or failed an operation."""


class BackendUnavailable(BackendError, ConnectionError):
    """The result backend cannot be reached."""
