"""Geometry for the city page's map: routes from a city to each of its sisters along great
circles, in the plain equirectangular projection of ``static/world.svg`` (x = longitude,
y = -latitude), drawn as SVG by the template. No map service, no request off the site."""

from __future__ import annotations

import math
from dataclasses import dataclass

STEPS = 48


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    label: str
    city_id: int


@dataclass(frozen=True)
class SisterMap:
    home: Marker
    sisters: list[Marker]
    # SVG "points" strings: a route that crosses the date line is cut in two.
    routes: list[str]


def _unit(latitude: float, longitude: float) -> tuple[float, float, float]:
    lat, lon = math.radians(latitude), math.radians(longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def great_circle(
    start: tuple[float, float], end: tuple[float, float], steps: int = STEPS
) -> list[tuple[float, float]]:
    """(latitude, longitude) points from ``start`` to ``end`` along the shorter great circle."""
    a, b = _unit(*start), _unit(*end)
    dot = max(-1.0, min(1.0, sum(p * q for p, q in zip(a, b, strict=True))))
    angle = math.acos(dot)
    if angle < 1e-6 or math.pi - angle < 1e-6:  # the same place, or exact antipodes
        return [start, end]
    points = []
    for step in range(steps + 1):
        t = step / steps
        wa = math.sin((1 - t) * angle) / math.sin(angle)
        wb = math.sin(t * angle) / math.sin(angle)
        x, y, z = (wa * p + wb * q for p, q in zip(a, b, strict=True))
        points.append(
            (math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x)))
        )
    return points


def route_segments(points: list[tuple[float, float]]) -> list[str]:
    """SVG polyline points, split where the route jumps across the date line."""
    segments: list[list[str]] = [[]]
    previous = None
    for latitude, longitude in points:
        if previous is not None and abs(longitude - previous) > 180:
            segments.append([])
        segments[-1].append(f"{longitude:.2f},{-latitude:.2f}")
        previous = longitude
    return [" ".join(segment) for segment in segments if len(segment) > 1]


def sister_map(city: dict) -> SisterMap:
    """The map of a city as ``directory.get_city`` answers it."""
    home = (city["latitude"], city["longitude"])
    routes = []
    sisters = []
    for sister in city["sisters"]:
        there = (sister["latitude"], sister["longitude"])
        routes.extend(route_segments(great_circle(home, there)))
        sisters.append(_marker(sister))
    return SisterMap(home=_marker(city), sisters=sisters, routes=routes)


def _marker(place: dict) -> Marker:
    return Marker(
        x=round(place["longitude"], 2),
        y=round(-place["latitude"], 2),
        label=f"{place['name']}, {place['country']}",
        city_id=place["id"],
    )
