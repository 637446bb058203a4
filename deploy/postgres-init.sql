-- One database per service: no service can read another's tables.
CREATE DATABASE directory;
CREATE DATABASE blog;
CREATE DATABASE notifier;
