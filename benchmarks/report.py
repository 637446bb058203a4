"""The rows and the markdown table the measure-by-value benchmarks print."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""


def table(rows: list[Row]) -> str:
    lines = ["| measure | value | baseline (same run) | ratio |", "|---|---|---|---|"]
    lines += [f"| {row.name} | {row.value} | {row.baseline} | {row.ratio} |" for row in rows]
    return "\n".join(lines)
