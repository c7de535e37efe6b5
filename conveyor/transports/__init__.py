"""Transports: one module per broker, all implementing conveyor.transports.base."""
