"""Testing helpers for users: `conveyor.contrib.testing.worker.start_worker`."""
