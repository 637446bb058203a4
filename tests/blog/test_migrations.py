"""The blog's migrations carry stored data forward: links stored before evidence was kept
become the directory's answer of their posts, so a staff correction keeps them."""

from pathlib import Path

from sqlalchemy import text

from services.blog import city_links
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import utcnow
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "blog" / "migrations"


def test_links_stored_before_evidence_was_kept_survive_a_correction(tmp_path):
    url = f"sqlite:///{tmp_path / 'blog.db'}"
    upgrade(MIGRATIONS, url, "0004")
    engine = make_engine(url)
    now = utcnow().isoformat()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO posts (id, key, title, url, excerpt, content_html, tags,"
                " reading_minutes, published_at, content_hash, first_seen_at, changed_at,"
                " city_ids, linked_hash, announced, hidden) VALUES (1, 'k', 'T',"
                " 'https://example.org/k', 'e', '<p>x</p>', '[]', 1, :now, 'h', :now, :now,"
                " '[3, 5]', 'h', 1, 0)"
            ),
            {"now": now},
        )
        conn.execute(text("INSERT INTO post_cities (post_id, city_id) VALUES (1, 3), (1, 5)"))
    upgrade(MIGRATIONS, url)

    with session_scope(make_session_factory(engine)) as session:
        assert [c["source"] for c in city_links.post_links(session, 1)["cities"]] == [
            "found",
            "found",
        ]
        linked, announced = city_links.correct_city(session, 1, 9, "add", utcnow())
    assert [c["city_id"] for c in linked["cities"]] == [3, 5, 9] and announced
    engine.dispose()
