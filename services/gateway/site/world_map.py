"""Geometry for the city page's map: routes from a city to each of its sisters along great
circles, in the plain equirectangular projection of ``static/world.svg`` (x = longitude,
y = -latitude), drawn as SVG by the template. No map service, no request off the site."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

# One point every few degrees of arc: smooth at the map's size, cheap for a city with 100 sisters.
DEGREES_PER_STEP = 4.0


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


def great_circle(start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    """(latitude, longitude) points from ``start`` to ``end`` along the shorter great circle."""
    ax, ay, az = _unit(*start)
    bx, by, bz = _unit(*end)
    angle = math.acos(max(-1.0, min(1.0, ax * bx + ay * by + az * bz)))
    if angle < 1e-6 or math.pi - angle < 1e-6:  # the same place, or exact antipodes
        return [start, end]
    steps = max(2, math.ceil(math.degrees(angle) / DEGREES_PER_STEP))
    sin_angle = math.sin(angle)
    points = [start]
    for step in range(1, steps):
        t = step / steps
        wa = math.sin((1 - t) * angle) / sin_angle
        wb = math.sin(t * angle) / sin_angle
        x, y, z = wa * ax + wb * bx, wa * ay + wb * by, wa * az + wb * bz
        points.append(
            (math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x)))
        )
    points.append(end)
    return points


def route_segments(points: list[tuple[float, float]]) -> list[str]:
    """SVG polyline points; a route across the date line is cut there, each piece running to
    the map's edge."""
    segments: list[list[str]] = [[]]
    previous = None
    for latitude, longitude in points:
        if previous is not None and abs(longitude - previous[1]) > 180:
            edge = 180.0 if previous[1] > 0 else -180.0
            unwrapped = longitude + 2 * edge
            share = (edge - previous[1]) / (unwrapped - previous[1])
            crossing = previous[0] + share * (latitude - previous[0])
            segments[-1].append(_point(crossing, edge))
            segments.append([_point(crossing, -edge)])
        segments[-1].append(_point(latitude, longitude))
        previous = (latitude, longitude)
    return [" ".join(segment) for segment in segments if len(segment) > 1]


def _point(latitude: float, longitude: float) -> str:
    return f"{longitude:.2f},{-latitude:.2f}"


def sister_map(city: dict) -> SisterMap:
    """The map of a city as ``directory.get_city`` answers it."""
    home = (city["latitude"], city["longitude"])
    there = tuple((sister["latitude"], sister["longitude"]) for sister in city["sisters"])
    return SisterMap(
        home=_marker(city),
        sisters=[_marker(sister) for sister in city["sisters"]],
        routes=list(_routes(home, there)),
    )


@functools.lru_cache(maxsize=2048)
def _routes(home: tuple[float, float], there: tuple[tuple[float, float], ...]) -> tuple[str, ...]:
    # A busy city's routes cost milliseconds; its page is asked for again and again.
    return tuple(
        segment for place in there for segment in route_segments(great_circle(home, place))
    )


def _marker(place: dict) -> Marker:
    return Marker(
        x=round(place["longitude"], 2),
        y=round(-place["latitude"], 2),
        label=f"{place['name']}, {place['country']}",
        city_id=place["id"],
    )
