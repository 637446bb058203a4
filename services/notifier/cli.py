"""`sistercities notifier ...`: staff commands for subscribers and digests, and the
unsubscribe mailbox."""

from __future__ import annotations

import json
import sys

import click


@click.group(name="notifier")
def notifier_cli() -> None:
    """Subscribers and their digests."""


@notifier_cli.command("stats")
def stats_command() -> None:
    """Subscribers by status and frequency, deliveries by status."""
    from services.notifier.tasks import subscriber_stats

    click.echo(json.dumps(subscriber_stats.run(), indent=2))


@notifier_cli.command("preview")
@click.argument("email")
def preview_command(email: str) -> None:
    """Print the digest EMAIL would get now (the whole message), without sending it."""
    from services.notifier.tasks import preview_digest

    preview = _staff_call(preview_digest, email)
    count = preview["stories"]
    what = "piece of news" if count == 1 else "pieces of news"
    click.echo(f"{count} {what} for {preview['email']} ({preview['status']})\n")
    click.echo(preview["message"])


@notifier_cli.command("send")
@click.argument("frequency", type=click.Choice(["weekly", "daily"]))
def send_command(frequency: str) -> None:
    """Send FREQUENCY's digests now, through the workers (one per subscriber and period)."""
    from services.notifier.tasks import record_send_request, schedule_digests

    record_send_request(frequency)
    handed_out = schedule_digests.run(frequency, every=True)
    click.echo(
        f"{handed_out['deliveries']} digests handed to the notifier workers "
        f"in {handed_out['batches']} batches"
    )


@notifier_cli.group("digests")
def digests_cli() -> None:
    """Digests marked sent whose acceptance by the mail server was never recorded."""


@digests_cli.command("unconfirmed")
@click.option("--period", help="Only this period (weekly:2026-W48, daily:2026-11-28)")
def unconfirmed_command(period: str | None) -> None:
    """List digests sent, not acknowledged (what a crash at a message's last line may have
    lost), by period. Rows marked in the last few minutes are left out (a send under way)."""
    from services.notifier.tasks import list_unconfirmed_digests

    listed = _staff_call(list_unconfirmed_digests, period)
    for each in listed["periods"]:
        click.echo(f"{each['period']}: {each['count']} sent, not acknowledged")
        for delivery in each["deliveries"]:
            click.echo(
                f"  delivery {delivery['id']}  subscriber {delivery['subscriber_id']}  "
                f"sent {delivery['sent_at']}  {delivery['message_id']}"
            )
    if not listed["periods"]:
        click.echo("no digest sent and not acknowledged")


@digests_cli.command("resend-unconfirmed")
@click.option("--period", required=True, help="The period to re-send (weekly:2026-W48)")
@click.option("--yes", is_flag=True, help="Do not ask first")
def resend_unconfirmed_command(period: str, yes: bool) -> None:
    """Send PERIOD's digests sent, not acknowledged, again: each once at most, with its
    original Message-ID (receiving mailboxes drop a copy they already hold) and content."""
    from services.notifier.tasks import list_unconfirmed_digests, resend_unconfirmed_digests

    count = _staff_call(list_unconfirmed_digests, period)["total"]
    if count == 0:
        click.echo(f"no digest of {period} sent and not acknowledged")
        return
    if not yes:
        what = "digest" if count == 1 else "digests"
        click.confirm(f"Send {count} {what} of {period} again, with their Message-IDs?", abort=True)
    outcome = _staff_call(resend_unconfirmed_digests, period)
    click.echo(
        f"{outcome['resent']} re-sent, {outcome['skipped']} skipped (re-sent by someone else, "
        f"or nothing left to send), {outcome['failed']} refused by the mail server"
    )


def _staff_call(task, *args) -> dict:
    """A task run in this process, its refusal or a server that is down told in one line."""
    from shared.errors import ServiceError, TransientError

    try:
        return task.run(*args)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    except TransientError as error:
        raise click.ClickException(str(error)) from None


@notifier_cli.command("mailbox")
@click.option("--host", help="Listen on this address  [default: MAILBOX_HOST, 127.0.0.1]")
@click.option("--port", type=int, help="Listen on this port  [default: MAILBOX_PORT, 2525]")
def mailbox_command(host: str | None, port: int | None) -> None:
    """Run the SMTP server that takes mail to unsubscribe@ (the List-Unsubscribe mailto)."""
    from services.notifier.config import load_mailbox_settings
    from services.notifier.mailbox import serve
    from shared.logs import configure_logging
    from shared.settings import ConfigError

    try:
        settings = load_mailbox_settings()
    except ConfigError as error:
        click.echo(f"sistercities: {error}", err=True)
        sys.exit(2)  # as every other process stops on bad settings
    configure_logging(settings, "mailbox")
    serve(settings, host or settings.mailbox_host, port or settings.mailbox_port)


@notifier_cli.command("unsubscribe-key")
def unsubscribe_key_command() -> None:
    """Print UNSUBSCRIBE_KEY for the mailbox: derived from SECRET_KEY, it checks unsubscribe
    tokens and signs nothing else, so the mailbox never holds SECRET_KEY."""
    from services.notifier.config import load_settings
    from shared.settings import ConfigError

    try:
        click.echo(load_settings().unsubscribe_key())
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
