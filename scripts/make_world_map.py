"""Write the site's world map (``services/gateway/static/world.svg``) from Natural Earth's
land outline at 1:110m, as the npm package world-atlas ships it (TopoJSON, public domain).

    npm install --prefix /tmp/atlas world-atlas@2
    python scripts/make_world_map.py /tmp/atlas/node_modules/world-atlas/land-110m.json

The map uses the plain equirectangular projection (x = longitude, y = -latitude) so that the
city page can place cities and draw routes on it without any projection library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "services" / "gateway" / "static" / "world.svg"


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    scale_x, scale_y = topology["transform"]["scale"]
    shift_x, shift_y = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * scale_x + shift_x, y * scale_y + shift_y))
        arcs.append(points)
    return arcs


def ring_points(arcs, ring: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in ring:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc[1:] if points else arc)
    return points


def path_data(topology: dict) -> str:
    arcs = decode_arcs(topology)
    parts = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for ring in polygon:
                points = ring_points(arcs, ring)
                moves = " ".join(f"{lon:.1f} {-lat:.1f}" for lon, lat in points)
                parts.append(f"M{moves}Z")
    return "".join(parts)


def main(source: str) -> None:
    topology = json.loads(Path(source).read_text())
    OUT.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="-180 -90 360 180">'
        "<!-- Natural Earth land, 1:110m (public domain), via world-atlas -->"
        f'<path fill="#cfd8cf" d="{path_data(topology)}"/></svg>\n'
    )
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
