#!/usr/bin/env sh
# Create the secret files compose.yaml mounts (once; never commit deploy/compose/secrets/).
set -eu
cd "$(dirname "$0")"
mkdir -p secrets && chmod 700 secrets
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
[ -f secrets/db_password ] || rand > secrets/db_password
[ -f secrets/redis_password ] || rand > secrets/redis_password
[ -f secrets/django_secret_key ] || rand > secrets/django_secret_key
[ -f secrets/audit_signing_key ] || python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())' > secrets/audit_signing_key
printf 'postgresql://rag:%s@postgres:5432/rag\n' "$(cat secrets/db_password)" > secrets/database_url
printf 'redis://:%s@redis:6379/0\n' "$(cat secrets/redis_password)" > secrets/broker_url
chmod 600 secrets/*
echo "secrets written to $(pwd)/secrets"
