"""The public API of the blog: syndicated stories, newest first, by city, tag or feed."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length, Range

from services.gateway.calls import hot, respond
from services.gateway.input_limits import CURSOR_CHARS, ID, TAG_CHARS

bp = APIBlueprint("posts", __name__, tag="Stories", url_prefix="/api/v1/posts")

# Services answer with ISO 8601 text, passed through as it is.
MOMENT = {"format": "date-time"}


class PostsQuery(Schema):
    city_id = Integer(
        load_default=None,
        validate=ID,
        metadata={"description": "Stories that mention this directory city"},
    )
    tag = String(
        load_default=None, validate=Length(min=1, max=TAG_CHARS), metadata={"example": "travel"}
    )
    feed_id = Integer(load_default=None, validate=ID)
    cursor = String(
        load_default=None,
        validate=Length(max=CURSOR_CHARS),
        metadata={"description": "next_cursor of the previous page"},
    )
    limit = Integer(load_default=20, validate=Range(min=1, max=100))


class TagOut(Schema):
    slug = String(required=True)
    name = String(required=True)


class PostOut(Schema):
    id = Integer(required=True)
    title = String(required=True)
    excerpt = String(required=True, metadata={"description": "Plain text, about 60 words"})
    url = String(required=True, metadata={"description": "The original post"})
    source_name = String(
        required=True,
        metadata={"description": 'Where the original is: "Medium", or the host of its site'},
    )
    image = String(allow_none=True)
    author = String(allow_none=True)
    published_at = String(required=True, metadata=MOMENT)
    reading_minutes = Integer(required=True)
    tags = List(Nested(TagOut), required=True)
    city_ids = List(Integer(), required=True)
    feed_id = Integer(allow_none=True)


class PostsOut(Schema):
    results = List(Nested(PostOut), required=True)
    next_cursor = String(allow_none=True, required=True)


class PostDetailOut(PostOut):
    content_html = String(required=True, metadata={"description": "Sanitized HTML"})
    updated_at = String(allow_none=True, metadata=MOMENT)


@bp.get("")
@hot
@bp.input(PostsQuery, location="query", arg_name="query")
@bp.output(PostsOut)
@bp.doc(summary="Syndicated stories, newest first", responses=[400, 503])
def list_posts(query: dict):
    return respond("blog.list_posts", **query)


@bp.get("/<int:post_id>")
@hot
@bp.output(PostDetailOut)
@bp.doc(summary="One story with its sanitized content", responses=[404, 503])
def get_post(post_id: int):
    return respond("blog.get_post", post_id=post_id)
