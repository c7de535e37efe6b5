"""The worker: one consumer feeding a pool, with retries, time limits and results."""
