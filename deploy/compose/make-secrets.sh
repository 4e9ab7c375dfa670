#!/usr/bin/env sh
# Create the secret files compose.yaml mounts (once; never commit deploy/compose/secrets/).
set -eu
cd "$(dirname "$0")"
mkdir -p secrets && chmod 700 secrets
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
[ -f secrets/db_password ] || rand > secrets/db_password              # the postgres superuser: init only
[ -f secrets/db_owner_password ] || rand > secrets/db_owner_password  # rag_owner: the migrate service only
[ -f secrets/db_app_password ] || rand > secrets/db_app_password      # rag_app: web, workers, beat, signer
[ -f secrets/redis_password ] || rand > secrets/redis_password
[ -f secrets/django_secret_key ] || rand > secrets/django_secret_key
[ -f secrets/audit_signing_key ] || python3 -c 'import os; print(os.urandom(32).hex())' > secrets/audit_signing_key
[ -f secrets/audit_master_key ] || python3 -c 'import os; print(os.urandom(32).hex())' > secrets/audit_master_key  # seals audit content: keep a copy
printf 'postgresql://rag_owner:%s@postgres:5432/rag\n' "$(cat secrets/db_owner_password)" > secrets/database_owner_url
printf 'postgresql://rag_app:%s@postgres:5432/rag\n' "$(cat secrets/db_app_password)" > secrets/database_url
printf 'redis://:%s@redis:6379/0\n' "$(cat secrets/redis_password)" > secrets/broker_url
chmod 600 secrets/*
echo "secrets written to $(pwd)/secrets"
# The public half of the audit signing key: pin it (RAG_AUDIT_PIN) and give it to your auditors.
python3 -c 'import sys; from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K; from cryptography.hazmat.primitives import serialization as s; k=K.from_private_bytes(bytes.fromhex(open("secrets/audit_signing_key").read().strip())); print("audit public key (pin as RAG_AUDIT_PIN):", k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())' 2>/dev/null \
  || echo "print the audit public key with: docker compose run --rm signer python manage.py audit_keygen --show"
