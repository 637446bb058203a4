"""What a City Search may ask (``directory.search_cities``): the directory refuses more, and
the gateway's API schema and search page check the same numbers before a task is sent."""

QUERY_CHARS = 200
COUNTRY_CHARS = 100
RESULTS = 100  # at most, in one answer
