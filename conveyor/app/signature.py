"""Kept for imports written before the canvas package: Signature lives in conveyor.canvas."""

from conveyor.canvas.signature import Signature, signature, signature_dicts

__all__ = ["Signature", "signature", "signature_dicts"]
