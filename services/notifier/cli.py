"""`sistercities notifier ...`: staff commands for subscribers and digests."""

from __future__ import annotations

import json

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
