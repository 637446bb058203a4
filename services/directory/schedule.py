"""The directory's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    "directory.purge_events": {"task": "directory.purge_events", "schedule": 3600.0},
}
