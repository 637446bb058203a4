"""The map's geometry: great-circle routes in the equirectangular projection."""

import itertools
import math

import pytest

from services.gateway.site.world_map import great_circle, route_segments, sister_map


def test_a_route_runs_from_one_city_to_the_other_along_the_great_circle():
    minneapolis, najaf = (44.98, -93.26), (32.0, 44.33)
    points = great_circle(minneapolis, najaf)
    assert points[0] == pytest.approx(minneapolis) and points[-1] == pytest.approx(najaf)
    # The great circle bows toward the pole: it passes far north of both ends.
    assert max(lat for lat, _ in points) > 60
    # Equal steps along the route.
    steps = [_km(a, b) for a, b in itertools.pairwise(points)]
    assert max(steps) - min(steps) < 1


def test_a_route_across_the_date_line_is_cut_in_two():
    minneapolis, harbin = (44.98, -93.26), (45.75, 126.65)
    segments = route_segments(great_circle(minneapolis, harbin))
    assert len(segments) == 2
    first, second = ([p.split(",") for p in s.split()] for s in segments)
    # Each piece runs to the edge of the map, where they meet at the same latitude.
    assert first[-1][0] == "-180.00" and second[0][0] == "180.00"
    assert first[-1][1] == second[0][1]


def test_the_same_place_is_a_point_not_an_error():
    assert great_circle((10.0, 10.0), (10.0, 10.0)) == [(10.0, 10.0), (10.0, 10.0)]


def test_markers_use_svg_coordinates():
    city = {"id": 1, "name": "Quito", "country": "Ecuador", "latitude": -0.22, "longitude": -78.5,
            "sisters": [{"id": 2, "name": "Tokyo", "country": "Japan", "latitude": 35.7,
                         "longitude": 139.7}]}  # fmt: skip
    drawn = sister_map(city)
    assert (drawn.home.x, drawn.home.y) == (-78.5, 0.22)
    assert (drawn.sisters[0].x, drawn.sisters[0].y) == (139.7, -35.7)
    assert drawn.sisters[0].label == "Tokyo, Japan"


def _km(a, b):
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    cos = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return 6371 * math.acos(max(-1, min(1, cos)))
