"""The public site's pages, rendered from what the real services answer."""

import dataclasses
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import feedparser
import pytest

from tests.site.conftest import HOSTILE, story
from tests.site.conftest import story as story_data

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class Links(HTMLParser):
    """Every address a page makes the browser load or follow."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []
        self.followed: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "image") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "image" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        if tag == "link" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.followed.append(attrs["href"])


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path, headers=BROWSER)
    assert response.status_code == status, response.text[:500]
    assert response.mimetype == "text/html"
    return response.text


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_home_has_search_stories_subscribe_and_donate(client, site_world):
    html = page(client, "/")
    assert '<h1 id="hero-title">City Search — Find your city\'s sister!</h1>' in html
    assert 'role="search"' in html and 'data-autocomplete="/api/v1/cities"' in html
    # The newest story first, each card ending "… view" with a link to the story's page.
    assert html.index("A visit to Najaf") < html.index("Minneapolis day")
    assert f'href="/blog/{site_world.stories["najaf"]}"' in html
    assert re.search(r"What happened in A visit to Najaf… <a [^>]*>view</a>", html)
    assert "Take Action" in html and 'action="/subscribe"' in html
    assert '<a class="button" href="https://donate.sistercities.test/">Donate</a>' in html
    # Only the site's own files: no fonts, scripts or styles from other hosts.
    for address in links(html).loaded:
        host = urlsplit(address).netloc
        assert not host or address.startswith("https://miro.medium.com/"), address


def test_a_card_ends_its_real_excerpt_with_one_ellipsis(client, site_world):
    from services.blog.sanitizer import clean_content

    words = " ".join(f"word{n}" for n in range(200))
    made = clean_content(f"<p>{words}</p>").excerpt  # as the pipeline cuts it
    assert made.endswith("…")
    cut = dataclasses.replace(story("cut-excerpt", "A long story", 0), excerpt=made)
    site_world.add_stories([(cut, [])])
    html = page(client, "/")
    assert f"{made} <a " in html and "……" not in html


def test_a_story_title_cannot_inject_markup(client, site_world):
    for path in ("/", "/blog", f"/blog/{site_world.stories['hostile']}"):
        html = page(client, path)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in html


def test_search_page_ranks_cities_and_says_did_you_mean(client, site_world):
    html = page(client, "/cities?q=minnea")
    assert f'href="/cities/{site_world.cities["Minneapolis"]}"' in html
    assert "4 sister cities" in html and "Did you mean" not in html

    typo = page(client, "/cities?q=Minneapols")
    assert re.search(r"Did you mean <a href=\"/cities/\d+\">Minneapolis, United States</a>", typo)

    nothing = page(client, "/cities?q=Qwxzzyv")
    assert "No city matches “Qwxzzyv”" in nothing

    reflected = page(client, "/cities?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert(1)" not in reflected and "&lt;script&gt;alert(1)" in reflected

    too_long = client.get("/cities?q=" + "a" * 500, headers=BROWSER)
    assert too_long.status_code == 400 and "too long" in too_long.text


def test_city_page_shows_sisters_map_stories_and_suggestions(client, site_world):
    cities = site_world.cities
    html = page(client, f"/cities/{cities['Minneapolis']}")
    assert "<h1>Minneapolis</h1>" in html
    rows = re.findall(r'<th scope="row"><a href="/cities/(\d+)">([^<]+)</a></th>', html)
    # Sorted by distance: Tours, Uppsala, Harbin, Najaf from Minneapolis.
    assert [name for _, name in rows] == ["Tours", "Uppsala", "Harbin", "Najaf"]
    assert "<td>2009</td>" in html and "<td>—</td>" in html
    # The map: the world, one route per sister (Harbin's crosses the date line over the Pacific
    # and is drawn in two pieces), a marker each.
    assert len(re.findall(r"<polyline points=", html)) == 5
    assert len(re.findall(r'<circle cx="[-\d.]+" cy="[-\d.]+" r="1.6">', html)) == 4
    assert re.search(r'<image href="/static/[0-9a-f]{12}/world.svg"', html)
    # Stories about the city or its sisters, and not those about unrelated cities.
    assert "A visit to Najaf" in html and "Minneapolis day" in html
    assert "&lt;script&gt;" not in html
    assert "Cities that would make good new sisters" in html
    assert f'<input type="hidden" name="city_ids" value="{cities["Minneapolis"]}">' in html

    by_year = page(client, f"/cities/{cities['Minneapolis']}?sort=year")
    rows = re.findall(r'<th scope="row"><a href="/cities/\d+">([^<]+)</a></th>', by_year)
    assert rows[:3] == ["Tours", "Harbin", "Najaf"]


def test_unknown_city_and_story_are_html_404s(client, site_world):
    assert "Page not found" in page(client, "/cities/999999", 404)
    assert "Page not found" in page(client, "/blog/999999", 404)
    assert "Page not found" in page(client, "/no/such/page", 404)


def test_blog_lists_filters_and_shows_a_story(client, site_world):
    cities = site_world.cities
    html = page(client, f"/blog?city={cities['Najaf']}")
    assert "Stories about Najaf" in html
    assert "A visit to Najaf" in html and "Minneapolis day" not in html
    assert "A visit to Najaf" in page(client, "/blog?tag=exchange")
    assert "No stories yet" in page(client, "/blog?tag=nothing-like-this")
    assert page(client, "/blog?city=abc", 400)

    story = page(client, f"/blog/{site_world.stories['najaf']}")
    assert "<h1>A visit to Najaf</h1>" in story and "By Ada Writer" in story
    assert "<p>The story of najaf-visit.</p>" in story
    assert f'<a href="/cities/{cities["Najaf"]}">Najaf</a>' in story
    assert 'href="https://medium.com/sister-cities/najaf-visit"' in story
    assert "View the original post on Medium" in story
    # Another feed's story names its own site.
    other = dataclasses.replace(
        story_data("other-site", "Elsewhere", 0), key="9:guid:other-site",
        url="https://www.news.example.org/elsewhere",
    )  # fmt: skip
    (other_id,) = site_world.add_stories([(other, [])])
    assert "View the original post on news.example.org" in page(client, f"/blog/{other_id}")


def test_blog_pages_through_older_stories(client, site_world):
    # Enough stories for a second page, all older than the world's three.
    site_world.add_stories([(story(f"old-{n}", f"Old story {n}", 10 + n), []) for n in range(12)])
    first = page(client, "/blog")
    older = re.search(r'<a rel="next" href="([^"]+)">Older stories</a>', first)
    assert older, "a link to the next page"
    second = page(client, older.group(1).replace("&amp;", "&"))
    assert "Old story 11" in second and "A visit to Najaf" not in second
    assert 'href="/blog">Newest</a>' in second


def test_atom_feeds_of_all_stories_and_of_one_city(client, site_world):
    response = client.get("/feed.xml")
    assert response.status_code == 200
    assert response.content_type.startswith("application/atom+xml")
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.bozo_exception
    titles = [entry.title for entry in feed.entries]
    assert titles[:2] == ["A visit to Najaf", "Minneapolis day"] and HOSTILE in titles
    entry = feed.entries[0]
    assert entry.link == f"http://sistercities.test/blog/{site_world.stories['najaf']}"
    assert "https://medium.com/sister-cities/najaf-visit" in [link.href for link in entry.links]

    city = feedparser.parse(client.get(f"/cities/{site_world.cities['Minneapolis']}/feed.xml").data)
    assert "Minneapolis" in city.feed.title
    assert [entry.title for entry in city.entries] == ["A visit to Najaf", "Minneapolis day"]
    assert client.get("/cities/999999/feed.xml").status_code == 404
