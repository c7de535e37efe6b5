"""Make `benchmarks.tasks` importable however pytest is started (the repo root is not a
package and not installed)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
