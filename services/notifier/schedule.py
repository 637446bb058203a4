"""The notifier's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    "notifier.purge_events": {"task": "notifier.purge_events", "schedule": 3600.0},
}
