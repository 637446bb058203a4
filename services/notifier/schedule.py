"""The notifier's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    # Who is due is worked out from the ledger: running it often costs little and sends
    # nothing twice.
    "notifier.schedule_digests": {"task": "notifier.schedule_digests", "schedule": 300.0},
    # Campaigns whose time has come (and sends lost on the way) go out within a minute.
    "notifier.send_due_campaigns": {"task": "notifier.send_due_campaigns", "schedule": 60.0},
    "notifier.purge_events": {"task": "notifier.purge_events", "schedule": 3600.0},
}
