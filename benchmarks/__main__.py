"""`make bench`: run every benchmark and print its table (medians, p99, ratios against a
baseline measured in the same run)."""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime

from benchmarks import bench_blog, bench_digests, bench_rpc, bench_search, bench_site

BENCHMARKS = {
    "rpc": bench_rpc,
    "search": bench_search,
    "blog": bench_blog,
    "digests": bench_digests,
    "site": bench_site,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    args = parser.parse_args()
    print(
        f"# Sister Cities benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    for name in args.only or BENCHMARKS:
        module = BENCHMARKS[name]
        print(f"## {name}: {module.__doc__.strip().splitlines()[0]}\n")
        print(module.table(module.measure(args.seconds)))
        print()


if __name__ == "__main__":
    main()
