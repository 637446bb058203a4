"""What the gateway accepts from a visitor, in one place: the API's schemas and the site's
pages check the same limits. City Search's are the directory's own, shared with it
(``shared/search_limits.py``)."""

from __future__ import annotations

from apiflask.validators import Range

# Every service keeps its ids in 32-bit integer columns: a bigger number names nothing, and
# PostgreSQL would fail on it rather than find nothing.
MAX_ID = 2**31 - 1
ID = Range(min=1, max=MAX_ID)
# The digest's rhythms, in the order the forms offer them.
FREQUENCIES = ("weekly", "daily")
# Stories: a tag's slug and a page's cursor (the blog gives out shorter ones).
TAG_CHARS = 100
CURSOR_CHARS = 200
