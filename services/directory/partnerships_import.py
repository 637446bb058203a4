"""Importing partnerships from a CSV file (``partnership_csv`` reads it, ``place_resolver``
finds or creates each side's city). Bad rows are reported with their line number and never
stop the import. Re-importing the same file changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.directory.index_version import announce_cities_changed, bump_version
from services.directory.models import Base, Partnership
from services.directory.partnership_csv import ReadingReport, Row, RowError, read_rows
from services.directory.place_resolver import Resolver
from shared import audit
from shared.events import publish_many

BATCH_ROWS = 1000


@dataclass
class ImportReport(ReadingReport):
    partnerships_created: int = 0
    partnerships_already_present: int = 0
    cities_matched: int = 0
    cities_created: int = 0

    def lines(self, show_rejected: int = 50) -> list[str]:
        lines = [
            f"rows read:                      {self.rows_read:,}",
            f"partnerships created:           {self.partnerships_created:,}",
            f"partnerships already present:   {self.partnerships_already_present:,}",
            f"city sides matched:             {self.cities_matched:,}",
            f"cities created:                 {self.cities_created:,}",
            f"rows rejected:                  {len(self.rejected):,}",
        ]
        for line, reason in self.rejected[:show_rejected]:
            lines.append(f"  line {line}: {reason}")
        if len(self.rejected) > show_rejected:
            lines.append(f"  ... and {len(self.rejected) - show_rejected:,} more")
        return lines

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "partnerships_created": self.partnerships_created,
            "partnerships_already_present": self.partnerships_already_present,
            "cities_matched": self.cities_matched,
            "cities_created": self.cities_created,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


def import_partnerships(
    session: Session,
    text: str,
    source: str,
    progress: Callable[[int], None] | None = None,
    commit: Callable[[], None] | None = None,
) -> ImportReport:
    """Import every good row. ``commit`` is called after each batch, so a long import keeps
    what it has done if stopped; a row is written whole or not at all."""
    report = ImportReport()
    resolver = Resolver(session)
    existing = {
        (a, b) for a, b in session.execute(select(Partnership.city_a_id, Partnership.city_b_id))
    }
    pending: list[dict] = []

    def flush() -> None:
        if not pending:
            return
        created = session.execute(
            insert(Partnership).returning(
                Partnership.id,
                Partnership.city_a_id,
                Partnership.city_b_id,
                Partnership.since,
                Partnership.status,
                Partnership.source,
                Partnership.notes,
            ),
            pending,
        ).all()
        publish_many(
            session,
            Base.metadata,
            "directory.partnership_changed",
            [
                {
                    "change": "created",
                    "partnership": {
                        "id": row[0],
                        "city_ids": [row[1], row[2]],
                        "since": row[3],
                        "status": row[4],
                        "source": row[5],
                        "notes": row[6],
                    },
                }
                for row in created
            ],
        )
        bump_version(session)
        # One entry a batch, committed with it: the record never claims more than is there.
        audit.record(
            session,
            Base.metadata,
            "partnerships.imported",
            "import",
            source[:64],
            {
                "source": source,
                "partnerships_created": len(created),
                "partnership_ids": [row[0] for row in created],
            },
            related=[("partnership", row[0]) for row in created],
        )
        pending.clear()
        if commit is not None:
            commit()

    rows = []
    # First pass: every place the file names exists afterwards (matched or created).
    for row in _rows_with_progress(read_rows(text, report), progress):
        try:
            # Both sides are checked before anything is written for the row.
            resolver.find(row.a)
            resolver.find(row.b)
        except RowError as error:
            report.rejected.append((row.line, str(error)))
            continue
        resolver.find_or_create(row.a)
        resolver.find_or_create(row.b)
        rows.append(row)
    if resolver.created:
        # Places the directory lacked: the blog links its stories again (they may name them).
        announce_cities_changed(session, {"created": resolver.created})
    # Second pass: resolve again against the complete set of places, exactly as a re-import
    # of the same file will, so that importing twice changes nothing.
    for row in rows:
        a, b = resolver.find_existing(row.a), resolver.find_existing(row.b)
        if a == b:
            report.rejected.append((row.line, "both sides are the same city"))
            continue
        pair = (min(a, b), max(a, b))
        if pair in existing:
            report.partnerships_already_present += 1
            continue
        existing.add(pair)
        pending.append(
            {
                "city_a_id": pair[0],
                "city_b_id": pair[1],
                "since": row.since,
                "status": row.status,
                "source": row.source or source,
                "notes": row.notes,
            }
        )
        report.partnerships_created += 1
        if len(pending) >= BATCH_ROWS:
            flush()
    flush()
    report.cities_matched, report.cities_created = resolver.matched, resolver.created
    report.rejected.sort()
    return report


def _rows_with_progress(
    rows: Iterable[Row], progress: Callable[[int], None] | None
) -> Iterator[Row]:
    for row in rows:
        yield row
        if progress is not None:
            progress(1)
