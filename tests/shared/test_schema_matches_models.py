"""Each service's migrations build exactly the tables its models describe: a column added to
a model without a migration (or the other way round) fails here, not in production."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


# SQLite cannot reflect an expression index, so alembic leaves one out of the comparison and
# says so; the notifier's (``ix_subscribers_email_lower``) is PostgreSQL's only, and compared
# there.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.parametrize("service", ["directory", "blog", "notifier", "staff"])
def test_the_migrated_database_matches_the_models(engines, service):
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    with engines[service].connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
