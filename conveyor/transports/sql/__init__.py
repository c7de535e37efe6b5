"""The SQL transport (``sqlite:///``, ``sql+postgresql://``, ``sql+mysql://``): transport.py,
its schema, statements, broadcast and PostgreSQL notifications; the engines are
conveyor.clients.sql."""

from conveyor.transports.sql.transport import SQLOptions, SQLTransport

__all__ = ["SQLOptions", "SQLTransport"]
