"""Many Medium-like feeds served from one local process (the blog benchmark's "Medium").

Each feed has 10 items of about 5 KB of HTML shaped like Medium's output (figure and caption,
links, a quote, code with <br>, an embedly iframe, the "originally published" footer, the
tracking pixel), with ETags so a second poll is answered 304.

    python -m benchmarks.feed_farm --port 8123 --feeds 1000
"""

from __future__ import annotations

import argparse
import hashlib
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = 10
WORDS = (  # noqa: SIM905 - a word list reads better as words
    "the city council delegation visited partners exchange students culture music festival "
    "friendship mayor signed agreement schools trade river bridge museum library park "
    "Minneapolis Najaf Nashville Tamworth Lyon Birmingham Kyoto Paris Boston Strasbourg "
    "volunteers community history anniversary program youth art sports business delegates"
).split()


def feed_body(feed: int, seed: int = 7) -> bytes:
    rng = random.Random(seed * 100_003 + feed)
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    items = "".join(
        _item(rng, feed, n, now - timedelta(hours=6 * n + feed % 5)) for n in range(ITEMS)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0"><channel>'
        f"<title><![CDATA[Stories by Writer {feed} on Medium]]></title>"
        f"<link>https://medium.com/@writer{feed}?source=rss-{feed:x}------2</link>"
        "<generator>Medium</generator>"
        f"{items}</channel></rss>"
    ).encode()


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _item(rng: random.Random, feed: int, n: int, published: datetime) -> str:
    post_id = hashlib.sha256(f"{feed}-{n}".encode()).hexdigest()[:12]
    title = _words(rng, 7).capitalize()
    paragraphs = "".join(
        f'<p>{_words(rng, 40)} <a href="https://example.org/{post_id}/{k}">{_words(rng, 3)}</a>'
        f" <strong>{_words(rng, 4)}</strong> {_words(rng, 30)} <em>{_words(rng, 3)}</em>.</p>"
        for k in range(5)
    )
    html = (
        f'<h3>{title}</h3><figure><img alt="" src="https://cdn-images-1.medium.com/max/1024/'
        f'1*{post_id}.jpeg" /><figcaption>Photo by {_words(rng, 2)}</figcaption></figure>'
        f"{paragraphs}<blockquote>{_words(rng, 25)}</blockquote>"
        f"<pre>docker run --rm {post_id}<br>echo {_words(rng, 3)}</pre>"
        '<iframe src="https://cdn.embedly.com/widgets/media.html?src=https%3A%2F%2Fwww.youtube.com'
        f"%2Fembed%2F{post_id}&amp;url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3D{post_id}"
        '&amp;key=a19fcc184b9711e1b4764040d3dc5c07&amp;type=text%2Fhtml&amp;schema=youtube" '
        'width="640" height="480" frameborder="0" scrolling="no"><a href="https://medium.com/media/'
        f'{post_id}/href">https://medium.com/media/{post_id}/href</a></iframe>'
        f'<hr><p><a href="https://medium.com/pub/{post_id}">{title}</a> was originally published'
        ' in <a href="https://medium.com/pub">Sister Cities</a> on Medium, where people are '
        "continuing the conversation by highlighting and responding to this story.</p>"
        '<img src="https://medium.com/_/stat?event=post.clientViewed&referrerSource=full_rss'
        f'&postId={post_id}" width="1" height="1" alt="">'
    )
    link = f"https://medium.com/@writer{feed}/{title.lower().replace(' ', '-')}-{post_id}"
    return (
        f"<item><title><![CDATA[{title}]]></title><link>{link}?source=rss-{feed:x}------2</link>"
        f'<guid isPermaLink="false">https://medium.com/p/{post_id}</guid>'
        "<category><![CDATA[sister-cities]]></category><category><![CDATA[travel]]></category>"
        f"<dc:creator><![CDATA[Writer {feed}]]></dc:creator>"
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f"<atom:updated>{published.isoformat().replace('+00:00', 'Z')}</atom:updated>"
        f"<content:encoded><![CDATA[{html}]]></content:encoded></item>"
    )


def serve(port: int, feeds: int) -> None:
    bodies = {f"/feed/{n}": feed_body(n) for n in range(feeds)}
    etags = {path: '"' + hashlib.sha256(body).hexdigest() + '"' for path, body in bodies.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go as two writes

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == etags[self.path]:
                self.send_response(304)
                self.send_header("ETag", etags[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("ETag", etags[self.path])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--feeds", type=int, default=1000)
    arguments = parser.parse_args()
    serve(arguments.port, arguments.feeds)
