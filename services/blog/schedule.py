"""The blog's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    "blog.purge_events": {"task": "blog.purge_events", "schedule": 3600.0},
}
