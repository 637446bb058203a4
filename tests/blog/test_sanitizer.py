"""What survives into stored content: an allowlist, Medium's quirks handled, hostile HTML
neutralised (every payload in ../shared/corpora/xss_payloads.txt)."""

import re

import pytest

from services.blog.sanitizer import clean_content, excerpt, plain_text, sanitize
from tests.blog.conftest import CORPORA

DANGER = re.compile(
    r"<\s*(script|style|iframe|object|embed|form|input|svg|math|base|meta|link)\b"
    r"|\son[a-z]+\s*=|javascript:|vbscript:|data:",
    re.IGNORECASE,
)


def assert_safe(html: str) -> None:
    assert not DANGER.search(html), html


def test_allowed_structure_is_kept():
    html = (
        "<h2>Title</h2><p>A <em>b</em> <strong>c</strong><br>d</p><ul><li>one</li></ul>"
        "<blockquote>q</blockquote><pre><code>x = 1</code></pre><hr>"
        '<figure><img src="https://cdn-images-1.medium.com/max/1024/a.jpeg" alt="A">'
        "<figcaption>Caption</figcaption></figure>"
    )
    assert sanitize(html) == html.replace('alt="A">', 'alt="A">')


def test_links_are_absolute_and_marked():
    html = sanitize('<a href="/about" onclick="x()">about</a>', base_url="https://example.org/p/1")
    assert html == '<a href="https://example.org/about" rel="nofollow noopener">about</a>'


def test_images_only_over_https_and_no_tracking_pixels():
    html = sanitize(
        '<p><img src="http://example.org/a.png"><img src="https://example.org/b.png">'
        '<img src="https://medium.com/_/stat?event=post.clientViewed&amp;postId=1" width="1"'
        ' height="1" alt=""><img src="https://tracker.example/p.gif" width="1" height="1"></p>'
    )
    assert html == '<p><img src="https://example.org/b.png"></p>'


def test_an_embed_becomes_a_link_to_what_it_embedded():
    html = sanitize(
        '<iframe src="https://cdn.embedly.com/widgets/media.html?src=https%3A%2F%2Fwww.youtube'
        '.com%2Fembed%2Fabc&amp;url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3Dabc&amp;key=k"'
        ' width="640"><a href="https://medium.com/media/h/href">fallback</a></iframe>'
    )
    assert html == (
        '<p><a href="https://www.youtube.com/watch?v=abc" rel="nofollow noopener">'
        "https://www.youtube.com/watch?v=abc</a></p>"
    )
    assert sanitize('<iframe src="javascript:alert(1)"></iframe>x') == "x"


def test_dangerous_markup_goes_with_its_content():
    html = sanitize(
        "<p>safe<script>alert(1)</script><style>p{}</style></p><form><input></form>"
        '<object data="x"></object><embed src="x"><a href="javascript:alert(1)">j</a>'
        '<a href="data:text/html,x">d</a><img src="data:image/png;base64,AAAA">'
    )
    assert html == '<p>safe</p><a rel="nofollow noopener">j</a><a rel="nofollow noopener">d</a>'


def _payloads() -> list[str]:
    path = CORPORA / "xss_payloads.txt"
    if not path.exists():
        pytest.skip(f"the hostile payloads are not at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_every_hostile_payload_is_neutralised():
    payloads = _payloads()
    assert len(payloads) == 25
    for payload in payloads:
        content = clean_content(payload, base_url="https://example.org/post")
        assert_safe(content.html)
        assert "<" not in content.excerpt or "&lt;" in payload or "<" in payload


def test_plain_text_and_excerpt():
    html = "<p>One two.</p><p>Three</p><figure><figcaption>Photo: X</figcaption></figure>"
    assert plain_text(html) == "One two. Three Photo: X"
    assert plain_text(html, captions=False) == "One two. Three"
    words = " ".join(f"w{i}" for i in range(100))
    cut = excerpt(words)
    assert cut.endswith("…") and len(cut.split()) == 60
    assert excerpt("short text.") == "short text."
    assert len(excerpt("x" * 5000)) <= 421


def test_content_reports_lead_image_and_reading_time():
    words = " ".join(["word"] * 530)
    content = clean_content(
        f'<figure><img src="https://img.example/lead.jpg"></figure><p>{words}</p>'
        "<hr><p><a href='https://medium.com/p/1'>T</a> was originally published in"
        " <a href='https://medium.com/pub'>Pub</a> on Medium, where people are continuing.</p>"
    )
    assert content.image == "https://img.example/lead.jpg"
    assert content.reading_minutes == 3  # 530 words at 265 a minute, plus 12 s for the image
    assert "originally published" in content.html  # the footer stays, as a link
    assert "originally published" not in content.excerpt
