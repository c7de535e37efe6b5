"""A `conveyor worker` command started for a test, its stderr (the log) collected line by
line; stopped with SIGTERM (a warm shutdown), killed if it does not end in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LoggedWorker:
    def __init__(self, app_path: str, redis_url: str, args: list[str], **env: str) -> None:
        environment = dict(
            os.environ, CONVEYOR_BROKER_URL=redis_url, CONVEYOR_RESULT_BACKEND=redis_url, **env
        )
        command = [sys.executable, "-m", "conveyor.cli", "-A", app_path, "worker", *args]
        self.process = subprocess.Popen(
            command, env=environment, cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(self.process.stderr or ()), daemon=True
        )
        self._reader.start()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            self._reader.join(10)
