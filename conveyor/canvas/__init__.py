"""Workflows: signatures, chains, groups, chords, chunks/map/starmap, and their results.

Clients build and send workflows; workers move them on (advance.py) when a task's result
is stored, so no client has to stay online and no worker waits on another task.
"""

from conveyor.canvas.chains import Chain
from conveyor.canvas.chords import Chord
from conveyor.canvas.errors import InvalidWorkflow
from conveyor.canvas.groups import Chunks, Group, chunks, xmap, xstarmap
from conveyor.canvas.results import GroupResult, ResultSet
from conveyor.canvas.signature import Signature, maybe_signature, signature

chain = Chain
group = Group
chord = Chord

__all__ = [
    "Chain",
    "Chord",
    "Chunks",
    "Group",
    "GroupResult",
    "InvalidWorkflow",
    "ResultSet",
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "xmap",
    "xstarmap",
]
