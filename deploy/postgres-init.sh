#!/bin/sh
# Run by the postgres image once, on an empty data directory (docker-entrypoint-initdb.d):
# deploy/postgres-init.sql with each service role's password from the environment.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v directory_password="${DIRECTORY_DB_PASSWORD:?set DIRECTORY_DB_PASSWORD}" \
    -v blog_password="${BLOG_DB_PASSWORD:?set BLOG_DB_PASSWORD}" \
    -v notifier_password="${NOTIFIER_DB_PASSWORD:?set NOTIFIER_DB_PASSWORD}" \
    -v staff_password="${STAFF_DB_PASSWORD:?set STAFF_DB_PASSWORD}" \
    -f "${INIT_SQL:-/etc/sistercities/postgres-init.sql}"
