#!/bin/sh
# The two database roles (README "Database roles"), made once by the postgres image's
# superuser at the first start of an empty data directory (/docker-entrypoint-initdb.d).
#   rag_owner  owns the database and every table; only the migrate job connects as it.
#   rag_app    web, workers, beat, signer: no superuser, no owner; migrate grants it the rest.
# pgvector is not a trusted extension, so the superuser installs it here.
set -eu
owner_pw=$(cat "${DB_OWNER_PASSWORD_FILE:-/run/secrets/db_owner_password}")
app_pw=$(cat "${DB_APP_PASSWORD_FILE:-/run/secrets/db_app_password}")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_pw="$owner_pw" -v app_pw="$app_pw" -v db="${POSTGRES_DB:-rag}" <<'SQL'
CREATE ROLE rag_owner LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'owner_pw';
CREATE ROLE rag_app LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD :'app_pw';
ALTER DATABASE :"db" OWNER TO rag_owner;
\connect :"db"
CREATE EXTENSION IF NOT EXISTS vector;
SQL
