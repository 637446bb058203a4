-- One database per service, each owned by a role of its own: a service's credentials open its
-- own database and no other. The blog worker parses hostile feeds; whatever takes it over must
-- not reach the subscribers (the notifier's database), the staff's password hashes and
-- sessions (the staff database) or the directory.
--
-- Run once, as a superuser, by psql with each role's password as a variable:
--   psql -v ON_ERROR_STOP=1 -v directory_password=... -v blog_password=... \
--        -v notifier_password=... -v staff_password=... -f deploy/postgres-init.sql
-- (docker compose runs it so, through deploy/postgres-init.sh). Each service's
-- *_DATABASE_URL then names its own role: postgresql://blog:PASSWORD@host:5432/blog.
-- The owner runs its service's migrations (`sistercities migrate`); PostgreSQL 15 and newer
-- give the public schema to the database's owner, so no other role can create tables there.
\set ON_ERROR_STOP on

CREATE ROLE directory LOGIN PASSWORD :'directory_password';
CREATE DATABASE directory OWNER directory;
-- Every role may connect to a new database (PUBLIC holds CONNECT): only its owner may here.
REVOKE CONNECT, TEMPORARY ON DATABASE directory FROM PUBLIC;

CREATE ROLE blog LOGIN PASSWORD :'blog_password';
CREATE DATABASE blog OWNER blog;
REVOKE CONNECT, TEMPORARY ON DATABASE blog FROM PUBLIC;

CREATE ROLE notifier LOGIN PASSWORD :'notifier_password';
CREATE DATABASE notifier OWNER notifier;
REVOKE CONNECT, TEMPORARY ON DATABASE notifier FROM PUBLIC;

CREATE ROLE staff LOGIN PASSWORD :'staff_password';
CREATE DATABASE staff OWNER staff;
REVOKE CONNECT, TEMPORARY ON DATABASE staff FROM PUBLIC;
