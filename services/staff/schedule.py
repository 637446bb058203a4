"""The staff service's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    # Attempts count for an hour at most; expired links and sessions are of no more use.
    "staff.purge_attempts": {"task": "staff.purge_attempts", "schedule": 3600.0},
    "staff.purge_events": {"task": "staff.purge_events", "schedule": 3600.0},
}
