"""`make bench`: run every benchmark and print one markdown table (medians, p99 or throughput,
each beside the baseline measured in the same run and the ratio)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime

from benchmarks import (
    bench_blog,
    bench_digests,
    bench_events,
    bench_lanes,
    bench_places,
    bench_rpc,
    bench_search,
    bench_site,
    bench_story_links,
    bench_websub,
    workspace_pages,
)
from benchmarks.report import Row, table

BENCHMARKS = {
    "rpc": bench_rpc,
    "search": bench_search,
    "places": bench_places,
    "story_links": bench_story_links,
    "blog": bench_blog,
    "websub": bench_websub,
    "digests": bench_digests,
    "site": bench_site,
    "events": bench_events,
    "lanes": bench_lanes,
}
# Run only when named with --only: each loads its data set at size first (minutes).
OPTIONAL = {
    "workspace": workspace_pages,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS | OPTIONAL), action="append")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    args = parser.parse_args()
    rows: list[Row] = []
    for name in args.only or BENCHMARKS:
        module = (BENCHMARKS | OPTIONAL)[name]
        print(f"running {name}: {module.__doc__.strip().splitlines()[0]}", file=sys.stderr)
        measured = module.measure(args.seconds)
        as_rows = getattr(module, "as_rows", None)
        for row in as_rows(measured) if as_rows else measured:
            rows.append(Row(f"{name}: {row.name}", row.value, row.baseline, row.ratio))
    print(
        f"# Sister Cities benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
