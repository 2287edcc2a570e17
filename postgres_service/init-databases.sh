#!/usr/bin/env bash
# Creates the platform's two databases on the first start of an empty data volume:
#   odoo — owned by role `odoo`, Odoo's system of record;
#   rag  — owned by role `rag`, the engine's derived state, with the pgvector extension.
# The postgres image runs this once, as the superuser, from /docker-entrypoint-initdb.d; later
# starts skip it. To change a password afterwards see docs/deployment.md ("Rotating secrets").
set -Eeo pipefail

: "${ODOO_DB_PASSWORD:?ODOO_DB_PASSWORD must be set (see .env.example)}"
: "${RAG_DB_PASSWORD:?RAG_DB_PASSWORD must be set (see .env.example)}"

superuser_psql=(psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}")

# Passwords travel as psql variables and are quoted by psql (:'name'), never spliced into SQL.
"${superuser_psql[@]}" --dbname postgres \
    -v odoo_password="$ODOO_DB_PASSWORD" \
    -v rag_password="$RAG_DB_PASSWORD" <<'SQL'
CREATE ROLE odoo LOGIN PASSWORD :'odoo_password';
CREATE ROLE rag LOGIN PASSWORD :'rag_password';
-- Odoo creates its own databases with C collation; do the same for the one made here.
CREATE DATABASE odoo OWNER odoo ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0;
CREATE DATABASE rag OWNER rag ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE odoo FROM PUBLIC;
REVOKE ALL ON DATABASE rag FROM PUBLIC;
SQL

# pgvector is not a trusted extension: only a superuser may create it, so it is done here and
# the engine's migrations only need `CREATE EXTENSION IF NOT EXISTS vector` (a no-op).
"${superuser_psql[@]}" --dbname rag <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
SQL
