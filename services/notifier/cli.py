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
    from shared.errors import ServiceError

    try:
        preview = preview_digest.run(email)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    count = preview["stories"]
    what = "piece of news" if count == 1 else "pieces of news"
    click.echo(f"{count} {what} for {preview['email']} ({preview['status']})\n")
    click.echo(preview["message"])


@notifier_cli.command("send")
@click.argument("frequency", type=click.Choice(["weekly", "daily"]))
def send_command(frequency: str) -> None:
    """Send FREQUENCY's digests now, through the workers (one per subscriber and period)."""
    from services.notifier.tasks import schedule_digests

    handed_out = schedule_digests.run(frequency, every=True)
    click.echo(
        f"{handed_out['deliveries']} digests handed to the notifier workers "
        f"in {handed_out['batches']} batches"
    )


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
