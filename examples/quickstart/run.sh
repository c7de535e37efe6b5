#!/usr/bin/env bash
# The quickstart end to end on the embedded SQLite default: a worker in the background,
# the trigger, then a clean (warm) stop of the worker by its PID.
set -euo pipefail
cd "$(dirname "$0")"
conveyor=${CONVEYOR:-conveyor}
"$conveyor" -A tasks worker --loglevel=info -c 2 > worker.log 2>&1 &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null || true' EXIT
python trigger.py
kill -TERM "$worker"
wait "$worker" || true
trap - EXIT
echo "worker stopped cleanly; its log is in examples/quickstart/worker.log"
