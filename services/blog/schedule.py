"""The blog's periodic jobs, run by the one beat process."""

PERIODIC_TASKS = {
    # Each feed carries its own next-check time; this only hands out the ones that are due.
    "blog.schedule_fetches": {"task": "blog.schedule_fetches", "schedule": 60.0},
    # WebSub: renewals before leases end, failed subscriptions asked again (websub.py).
    "blog.tend_subscriptions": {"task": "blog.tend_subscriptions", "schedule": 60.0},
    "blog.link_pending_posts": {"task": "blog.link_pending_posts", "schedule": 300.0},
    "blog.purge_events": {"task": "blog.purge_events", "schedule": 3600.0},
}
