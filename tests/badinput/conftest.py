from tests.worker.conftest import app, start_worker

__all__ = ["app", "start_worker"]
