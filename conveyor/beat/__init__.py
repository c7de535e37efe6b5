"""Beat, the periodic scheduler: schedules (interval, crontab, solar) in the app's time zone,
entries from `beat_schedule` and `add_periodic_task`, and one leader among many beat
processes through a lease in the broker's or backend's store (docs/beat.md)."""
