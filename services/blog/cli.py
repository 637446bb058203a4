"""`sistercities blog ...`: staff commands that run in process against the blog's database."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import click


def _runtime():
    from services.blog.worker import runtime

    return runtime


@click.group(name="blog")
def blog_cli() -> None:
    """The syndicated blog: feeds and their posts."""


@blog_cli.command("add-feed")
@click.argument("url")
def add_feed_command(url: str) -> None:
    """Register a feed (a Medium publication or user, or any RSS/Atom URL)."""
    from services.blog.feeds import add_feed, feed_to_dict
    from shared.db import session_scope
    from shared.errors import ServiceError
    from shared.events import utcnow

    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            feed = feed_to_dict(
                add_feed(session, url, utcnow(), runtime.settings.allow_private_feeds)
            )
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"added feed {feed['id']}: {feed['url']} (fetched at the next poll)")


@blog_cli.command("list-feeds")
def list_feeds_command() -> None:
    """Every feed with its health."""
    from services.blog.feeds import list_feeds

    with _runtime().read_sessions() as session:
        feeds = list_feeds(session)
    if not feeds:
        click.echo("no feeds yet: add one with `sistercities blog add-feed URL`")
    for feed in feeds:
        click.echo(_feed_line(feed))


def _feed_line(feed: Mapping) -> str:
    health = feed["status"] + (f" ({feed['last_error']})" if feed["last_error"] else "")
    return (
        f"{feed['id']:>5}  {feed['url']}  {health}  posts={feed['post_count']}  "
        f"next={feed['next_check_at']}"
    )


@blog_cli.command("remove-feed")
@click.argument("feed_id", type=int)
@click.option(
    "--stories",
    type=click.Choice(["keep", "hide"]),
    required=True,
    help="Keep its stories listed, or hide them from every public page and list.",
)
def remove_feed_command(feed_id: int, stories: str) -> None:
    """Stop syndicating a feed; its stories stay listed or are hidden, as you choose."""
    from services.blog.feeds import remove_feed
    from shared.db import session_scope
    from shared.errors import ServiceError
    from shared.routing import GENERATION_KEY

    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            hidden = remove_feed(session, feed_id, stories)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    if hidden:
        runtime.redis.incr(GENERATION_KEY.format("blog"))  # the site's cached lists show them
    click.echo(f"removed feed {feed_id}" + (f" and hid its {hidden} stories" if hidden else ""))


@blog_cli.command("export-opml")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
def export_opml_command(file) -> None:
    """Write the feed list as OPML 2.0 to FILE (standard output when none is named)."""
    from services.blog.opml import export_opml

    with _runtime().read_sessions() as session:
        file.write(export_opml(session))


@blog_cli.command("import-opml")
@click.argument("file", type=click.File("rb"))
def import_opml_command(file) -> None:
    """Add the feeds an OPML file names (categories flattened); those already registered and
    those refused are reported, and never stop the rest."""
    from services.blog.opml import MAX_OPML_BYTES, import_opml
    from shared.db import session_scope
    from shared.errors import ServiceError
    from shared.events import utcnow

    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            # One byte more than allowed is enough to refuse a huge file without reading it.
            document = file.read(MAX_OPML_BYTES + 1)
            report = import_opml(session, document, utcnow(), runtime.settings.allow_private_feeds)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    for added in report["added"]:
        click.echo(f"added feed {added['id']}: {added['url']}")
    for url in report["already_present"]:
        click.echo(f"already present: {url}")
    for refused in report["refused"]:
        click.echo(f"refused: {refused['url']}: {refused['reason']}")
    click.echo(
        f"read {report['outlines_read']} feeds: {len(report['added'])} added (fetched at the "
        f"next poll), {len(report['already_present'])} already present, "
        f"{len(report['refused'])} refused"
    )


@blog_cli.command("poll")
@click.argument("feed_ids", metavar="[FEED_ID]...", nargs=-1, type=int)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True)
def poll_command(feed_ids: tuple[int, ...], threads: int) -> None:
    """Poll these feeds (every feed when none is named) now, in this process, whatever their
    next check time."""
    from services.blog.polling import all_feed_ids, poll_feed
    from services.blog.tasks import request_city_links

    runtime = _runtime()
    if not feed_ids:
        with runtime.read_sessions() as session:
            feed_ids = all_feed_ids(session)

    def poll(feed_id: int):
        return poll_feed(
            runtime.sessions,
            feed_id,
            allow_private=runtime.settings.allow_private_feeds,
            medium_domains=runtime.settings.medium_custom_domains,
            read_sessions=runtime.read_sessions,
        )

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(poll, feed_ids))
    changed = [post_id for result in results for post_id in result.changed_post_ids]
    for result in results:
        detail = result.error or f"{len(result.changed_post_ids)} new or changed"
        click.echo(f"feed {result.feed_id}: {result.outcome}: {detail}")
    failed = sum(result.outcome == "error" for result in results)
    click.echo(f"polled {len(results)} feeds: {len(changed)} posts new or changed, {failed} failed")
    if changed:
        try:
            asked = request_city_links(changed)
            click.echo(f"asked the directory to link {asked} posts to cities")
        except Exception as error:  # the workers' periodic sweep asks again later
            click.echo(f"city links will be requested later ({error.__class__.__name__})")
