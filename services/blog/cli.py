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
    from shared.events import utcnow
    from shared.routing import mark_stale

    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            hidden = remove_feed(session, feed_id, stories, utcnow())
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    if hidden:
        mark_stale(runtime.redis, "blog.posts_changed")  # the site's cached lists show them
    # Its hub subscriptions are cancelled by the workers' periodic job (at most a minute).
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
        _ask_for_links(changed)


def _ask_for_links(post_ids: list[int]) -> None:
    from services.blog.tasks import request_city_links

    try:
        asked = request_city_links(post_ids)
        click.echo(f"asked the directory to link {asked} posts to cities")
    except Exception as error:  # the workers' periodic sweep asks again later
        click.echo(f"city links will be requested later ({error.__class__.__name__})")


@blog_cli.command("post-cities")
@click.argument("post_id", type=int)
@click.option("--add", "added", metavar="CITY_ID", type=int, multiple=True, help="Link a city.")
@click.option(
    "--remove", "removed", metavar="CITY_ID", type=int, multiple=True, help="Unlink a city."
)
def post_cities_command(post_id: int, added: tuple[int, ...], removed: tuple[int, ...]) -> None:
    """A story's cities with the evidence for each; --add and --remove correct them (the
    correction holds when the story is polled or edited again; its pages and digests follow)."""
    from services.blog.city_links import correct_city, post_links
    from shared.db import session_scope
    from shared.errors import ServiceError
    from shared.events import utcnow
    from shared.routing import mark_stale

    runtime = _runtime()
    corrections = [(city_id, "add") for city_id in added]
    corrections += [(city_id, "remove") for city_id in removed]
    try:
        with session_scope(runtime.sessions) as session:
            for city_id, action in corrections:
                correct_city(session, post_id, city_id, action, utcnow())
            links = post_links(session, post_id)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    if corrections:
        mark_stale(runtime.redis, "blog.posts_changed")  # the site's cached pages show them
    for city in links["cities"]:
        evidence = "; ".join(city["evidence"]) or "no evidence kept"
        click.echo(f"{city['city_id']:>9}  {city['source']:<5}  {evidence}")
    for correction in links["corrections"]:
        click.echo(f"staff {correction['action']} {correction['city_id']}")
    if not links["cities"]:
        click.echo(f"post {post_id} is linked to no city")


@blog_cli.command("feed-cities")
@click.argument("feed_id", type=int)
@click.argument("city_ids", metavar="CITY_ID...", nargs=-1, type=int)
def feed_cities_command(feed_id: int, city_ids: tuple[int, ...]) -> None:
    """Set the cities of the organisation a feed belongs to (none named: clear them); its
    stories' city links are worked out again with them as evidence."""
    from services.blog.feeds import set_feed_cities
    from shared.db import session_scope
    from shared.errors import ServiceError

    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            feed, post_ids = set_feed_cities(session, feed_id, list(city_ids))
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    cities = ", ".join(str(city_id) for city_id in feed["city_ids"]) or "none"
    click.echo(f"feed {feed_id}: organisation's cities {cities}")
    if post_ids:
        _ask_for_links(post_ids)
