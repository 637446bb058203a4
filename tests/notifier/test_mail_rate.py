"""MAIL_RATE: one limit for every notifier worker, counted in a real Redis."""

from services.notifier import mail_rate


def test_the_global_rate_holds_across_senders(redis_client, monkeypatch):
    """MAIL_RATE: at most ``rate`` messages in any one second, counted in Redis, whichever
    worker sends them (two paces here, as two workers would have)."""
    import collections
    import types
    import uuid

    clock = [1_000_000.0]
    # A clock of the module's own: patching the time module itself would also speed up the
    # sleeps of other threads in this process (the gateway's rate-limit sync).
    fake_time = types.SimpleNamespace(
        time=lambda: clock[0], sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds)
    )
    monkeypatch.setattr(mail_rate, "time", fake_time)
    key = f"test:rate:{uuid.uuid4().hex}:{{}}"
    paces = [mail_rate.Pace(redis_client, 5, key=key), mail_rate.Pace(redis_client, 5, key=key)]
    sent_at = []
    for n in range(23):
        paces[n % 2]()
        sent_at.append(int(clock[0]))
    per_second = collections.Counter(sent_at)
    assert max(per_second.values()) == 5 and len(per_second) == 5  # 23 messages, 5 a second
    assert mail_rate.Pace(redis_client, 0)() is None  # 0: no limit, no Redis round trip
