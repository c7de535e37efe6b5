"""Transports: one per broker, each implementing the contract in conveyor.core.transport."""
