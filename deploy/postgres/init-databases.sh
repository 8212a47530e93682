#!/usr/bin/env bash
# Runs once, on the first start of an empty PostgreSQL data directory (the official image
# runs /docker-entrypoint-initdb.d/*.sh as the superuser). Creates one database and one
# login per service: each service owns its data (ARCHITECTURE.md "Data"); the three
# circulation instances share the circulation database.
# Passwords come from the environment (deploy/.env in compose) or from files named by
# *_FILE (the Secret kitsuki-secrets mounted in k8s); nothing here has a default.
set -euo pipefail

create() {
  local name=$1 password=$2
  if [ -z "$password" ]; then
    echo "init-databases: no password for $name" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
}

# A password from VAR, or from the file named by VAR_FILE (k8s mounts the Secret as files).
secret() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ]; then
    printf '%s' "${!var}"
  elif [ -n "${!file_var:-}" ]; then
    cat -- "${!file_var}"
  fi
}

create catalog "$(secret CATALOG_DB_PASSWORD)"
create patron "$(secret PATRON_DB_PASSWORD)"
create circulation "$(secret CIRCULATION_DB_PASSWORD)"
create notification "$(secret NOTIFICATION_DB_PASSWORD)"
