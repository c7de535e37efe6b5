"""Seeing what the queue does: the live event stream, the cluster state folded from it,
queue counts, the `conveyor events` view, the web dashboard, Prometheus metrics and traces.

Events are sent by conveyor.app.events (clients) and conveyor.worker.events (workers) and
kept by conveyor.backends.events (the history); this package only reads them.
"""
