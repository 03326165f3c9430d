# SPDX-License-Identifier: GPL-3.0-or-later
# Installed by selfhosted.ai_stack (openwebui role) as /usr/local/libexec/ai_stack/openwebui_backup.py.
#
#   python openwebui_backup.py backup  --data-dir D --backup-dir B --keep N [--kind scheduled|upgrade]
#                                      [--note TEXT] [--venv PATH] [--json]
#   python openwebui_backup.py list    --backup-dir B [--json]
#   python openwebui_backup.py restore --data-dir D --backup-dir B NAME|latest [--json]
#
# Run as the openwebui user (open-webui-backup.service, and the role's backup before it switches
# venvs), with the venv's interpreter: standard library only.
"""Consistent backups of Open WebUI's DATA_DIR, and their restore.

A backup is a directory ``<backup-dir>/<UTC time>-<kind>`` (for example ``20261202T031500Z-scheduled``)
holding ``webui.db``, ``vector_db/``, ``uploads/`` and ``backup.json`` (what was backed up, by which
release, the row count of every table, the integrity check).

* SQLite databases (``webui.db``, Chroma's ``vector_db/chroma.sqlite3``) are copied with SQLite's
  online backup API: a consistent snapshot even while the server writes (WAL mode), never a plain
  copy of a file that may be half-written or whose newest pages are still in ``-wal``. The rest of
  ``vector_db/`` (Chroma's index files) and ``uploads/`` are copied file by file. The database goes
  first, so every upload it names is in the copy (later uploads are extra, not missing).
* Everything is written into ``.incomplete-<name>`` and checked (``PRAGMA integrity_check``); only
  then renamed to ``<name>``, and only then are the oldest backups of the same kind beyond ``--keep``
  removed. A backup that fails (a full disk, a read error) removes its own partial copy, leaves
  every earlier backup alone and exits 1 with the reason.
* A restore copies the backup into ``DATA_DIR/.restore-incoming`` first (a full disk fails there,
  before anything is touched), moves the current data aside into ``DATA_DIR/replaced/<time>-before-<name>``
  (never deletes it) and renames the copy into place. It refuses while a process (the server) has
  ``webui.db`` open.

One backup or restore at a time (a lock file in the backup directory). Exit status: 0 done, 1
failed, 2 bad arguments or no such backup.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

DATABASE = "webui.db"
# What a backup holds, in the order it is taken (the database first).
ITEMS = (DATABASE, "vector_db", "uploads")
# Directories whose SQLite files are copied with the backup API (uploads are users' files: verbatim).
SQLITE_AWARE = (DATABASE, "vector_db")
SIDECARS = ("-wal", "-shm", "-journal")
MANIFEST = "backup.json"
KINDS = ("scheduled", "upgrade")
INCOMPLETE = ".incomplete-"
INCOMING = ".restore-incoming"
REPLACED = "replaced"
LOCK = ".lock"
SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite's "dead man switch" byte in the -shm file: every connection to a WAL database holds a read
# lock on it, so a write lock that cannot be had means another process has the database open.
SHM_DMS_OFFSET = 128


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"openwebui_backup: {message}", file=sys.stderr, flush=True)


def utc_stamp(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_file(source: Path, target: Path) -> None:
    """Copy one file (data and mode) and flush it to disk."""
    with source.open("rb") as reader, target.open("xb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copymode(source, target)


def sqlite_backup(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database, as one self-contained file (no -wal)."""
    # Read-only: the backup never writes to the server's database. Open WebUI keeps its -shm
    # writable for the openwebui user, so this reader takes part in WAL locking like any other.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(target)
        try:
            # All pages in one step: one read transaction, one snapshot.
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())


def check_database(path: Path) -> dict[str, int]:
    """``PRAGMA integrity_check`` of a copy, and the row count of each table."""
    # immutable: nothing writes the copy, so SQLite needs no -shm or -journal next to it.
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        result = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"the copy of {path.name} fails SQLite's integrity check: {'; '.join(result[:5])}")
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}
    finally:
        db.close()


def copy_item(source: Path, target: Path, sqlite_aware: bool, databases: list[str], base: Path) -> int:
    """Copy a file or a tree; returns the number of files. SQLite files go through the backup API."""
    if source.is_symlink():
        raise BackupError(f"{source} is a symbolic link; the backup copies only plain files and directories")
    if source.is_dir():
        target.mkdir(mode=0o700)
        count = 0
        for child in sorted(source.iterdir()):
            if sqlite_aware and child.name.endswith(SIDECARS) and is_sqlite(source / _strip_sidecar(child.name)):
                continue  # part of the database next to it, which the backup API reads
            count += copy_item(child, target / child.name, sqlite_aware, databases, base)
        return count
    if not source.is_file():
        raise BackupError(f"{source} is neither a file nor a directory")
    if sqlite_aware and is_sqlite(source):
        sqlite_backup(source, target)
        databases.append(str(target.relative_to(base)))
    else:
        copy_file(source, target)
    return 1


def _strip_sidecar(name: str) -> str:
    for suffix in SIDECARS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def backup_names(backup_dir: Path) -> list[str]:
    """Complete backups (those with a manifest), oldest first."""
    if not backup_dir.is_dir():
        return []
    names = [
        entry.name
        for entry in backup_dir.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and (entry / MANIFEST).is_file()
    ]
    return sorted(names)


def kind_of(name: str) -> str:
    return name.partition("-")[2]


@contextlib.contextmanager
def locked(backup_dir: Path):
    """One backup or restore at a time (the timer may fire during an upgrade)."""
    with (backup_dir / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"no space left on the device ({error})"
    if isinstance(error, sqlite3.Error) and "full" in str(error):
        return f"no space left on the device (SQLite: {error})"
    return str(error) or type(error).__name__


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def sync_tree(root: Path) -> None:
    for directory, _dirs, files in os.walk(root):
        for name in files:
            fsync_path(Path(directory, name))
        fsync_path(Path(directory))


def read_version(venv: str) -> dict[str, str]:
    """The release the venv holds, from the role's record in it (empty when there is none)."""
    if not venv:
        return {}
    path = Path(venv).resolve()
    try:
        record = json.loads((path / ".selfhosted.ai_stack.json").read_text())
    except (OSError, ValueError):
        record = {}
    return {"venv": path.name, "version": str(record.get("version", ""))}


def make_backup(args: argparse.Namespace) -> dict:
    data_dir, backup_dir = Path(args.data_dir), Path(args.backup_dir)
    if not (data_dir / DATABASE).is_file():
        raise BackupError(f"{data_dir / DATABASE} does not exist: nothing to back up")
    if not backup_dir.is_dir():
        raise BackupError(f"the backup directory {backup_dir} does not exist")
    with locked(backup_dir):
        # Left by a backup that was killed half-way: never complete, never restorable.
        for entry in backup_dir.glob(INCOMPLETE + "*"):
            log(f"removing {entry}, left incomplete by an earlier backup")
            remove_tree(entry)
        name = f"{utc_stamp()}-{args.kind}"
        while (backup_dir / name).exists():
            time.sleep(0.2)
            name = f"{utc_stamp()}-{args.kind}"
        work = backup_dir / (INCOMPLETE + name)
        started = time.monotonic()
        try:
            work.mkdir(mode=0o700)
            databases: list[str] = []
            files = {}
            for item in ITEMS:
                source = data_dir / item
                if source.exists() or source.is_symlink():
                    files[item] = copy_item(source, work / item, item in SQLITE_AWARE, databases, work)
            tables = {}
            for database in databases:
                tables[database] = check_database(work / database)
            manifest = {
                "name": name,
                "kind": args.kind,
                "note": args.note,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "data_dir": str(data_dir),
                **read_version(args.venv),
                "files": files,
                "integrity_check": "ok",
                "rows": tables,
            }
            with (work / MANIFEST).open("x") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
                handle.write("\n")
            sync_tree(work)
            work.rename(backup_dir / name)
            fsync_path(backup_dir)
        except BaseException as error:
            # The partial copy goes (it would only fill the disk further); nothing else is touched.
            with contextlib.suppress(OSError):
                remove_tree(work)
            if isinstance(error, (OSError, sqlite3.Error, BackupError)):
                raise BackupError(
                    f"the backup of {data_dir} into {backup_dir} failed: {describe(error)}. "
                    f"The earlier backups are untouched: {', '.join(backup_names(backup_dir)) or 'none'}"
                ) from error
            raise
        # Only after a complete backup: the oldest of the same kind beyond --keep.
        same_kind = [entry for entry in backup_names(backup_dir) if kind_of(entry) == args.kind]
        removed = same_kind[: max(len(same_kind) - args.keep, 0)]
        for old in removed:
            remove_tree(backup_dir / old)
        seconds = time.monotonic() - started
    users = manifest["rows"].get(DATABASE, {}).get("user", 0)
    chats = manifest["rows"].get(DATABASE, {}).get("chat", 0)
    log(
        f"backup {backup_dir / name} done in {seconds:.1f} s ({users} users, {chats} chats, "
        f"{sum(files.values())} files); removed {len(removed)} older {args.kind} backups"
    )
    return {"name": name, "path": str(backup_dir / name), "removed": removed, **manifest}


def resolve(backup_dir: Path, wanted: str) -> str:
    names = backup_names(backup_dir)
    if wanted == "latest":
        if not names:
            raise LookupError(f"there is no backup in {backup_dir}")
        return names[-1]
    if wanted not in names:
        raise LookupError(
            f"there is no backup called {wanted!r} in {backup_dir}; there are: {', '.join(names) or 'none'}"
        )
    return wanted


def database_in_use(database: Path) -> bool:
    """Whether another process has this WAL database open (the server must be stopped for a restore)."""
    shm = database.with_name(database.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_OFFSET)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_OFFSET)
        return False
    finally:
        os.close(fd)


def restore(args: argparse.Namespace) -> dict:
    data_dir, backup_dir = Path(args.data_dir), Path(args.backup_dir)
    name = resolve(backup_dir, args.name)
    source = backup_dir / name
    manifest = json.loads((source / MANIFEST).read_text())
    if database_in_use(data_dir / DATABASE):
        raise BackupError(f"{data_dir / DATABASE} is open in another process: stop open-webui before a restore")
    with locked(backup_dir):
        for database in manifest.get("rows", {}):
            check_database(source / database)
        incoming = data_dir / INCOMING
        with contextlib.suppress(FileNotFoundError):
            remove_tree(incoming)
        try:
            incoming.mkdir(mode=0o750)
            for item in ITEMS:
                if (source / item).exists():
                    # Verbatim: the databases in a backup are complete files already.
                    copy_item(source / item, incoming / item, False, [], incoming)
            sync_tree(incoming)
        except (OSError, BackupError) as error:
            with contextlib.suppress(OSError):
                remove_tree(incoming)
            raise BackupError(
                f"copying the backup {name} into {data_dir} failed: {describe(error)}. Nothing was changed"
            ) from error
        # Renames within DATA_DIR only: nothing is copied (or can run out of space) from here on.
        aside = data_dir / REPLACED / f"{utc_stamp()}-before-{name}"
        aside.mkdir(mode=0o750, parents=True)
        moved: list[str] = []
        placed: list[str] = []
        try:
            for item in (*[DATABASE + suffix for suffix in SIDECARS], *ITEMS):
                if (data_dir / item).exists() or (data_dir / item).is_symlink():
                    (data_dir / item).rename(aside / item)
                    moved.append(item)
            for item in ITEMS:
                if (incoming / item).exists():
                    (incoming / item).rename(data_dir / item)
                    placed.append(item)
        except OSError as error:
            # Put everything back where it was: the data stays as it was before the restore.
            for item in reversed(placed):
                (data_dir / item).rename(incoming / item)
            for item in reversed(moved):
                (aside / item).rename(data_dir / item)
            raise BackupError(f"moving the backup {name} into {data_dir} failed: {describe(error)}") from error
        incoming.rmdir()
        fsync_path(data_dir)
    log(f"restored {source} into {data_dir}; what was there before is in {aside}")
    return {"name": name, "path": str(source), "replaced": str(aside), "moved": moved, **manifest}


def listing(args: argparse.Namespace) -> list[dict]:
    backup_dir = Path(args.backup_dir)
    result = []
    for name in backup_names(backup_dir):
        try:
            manifest = json.loads((backup_dir / name / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        result.append({"name": name, "kind": kind_of(name), "version": manifest.get("version", "")})
    return result


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = top.add_subparsers(dest="command", required=True)
    make = commands.add_parser("backup", help="make a backup, then remove the oldest beyond --keep")
    make.add_argument("--data-dir", required=True)
    make.add_argument("--backup-dir", required=True)
    make.add_argument("--keep", type=int, required=True, help="backups of this kind to keep (at least 1)")
    make.add_argument("--kind", choices=KINDS, default="scheduled")
    make.add_argument("--note", default="", help="why the backup was made, kept in backup.json")
    make.add_argument("--venv", default="", help="the venv that runs (its release goes into backup.json)")
    make.add_argument("--json", action="store_true", help="print the result as JSON")
    show = commands.add_parser("list", help="list the complete backups, oldest first")
    show.add_argument("--backup-dir", required=True)
    show.add_argument("--json", action="store_true")
    back = commands.add_parser("restore", help="put a backup back (the server must be stopped)")
    back.add_argument("--data-dir", required=True)
    back.add_argument("--backup-dir", required=True)
    back.add_argument("name", help="a backup's name, or latest")
    back.add_argument("--json", action="store_true")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "backup" and args.keep < 1:
        log("--keep must be at least 1")
        return 2
    try:
        if args.command == "backup":
            result = make_backup(args)
        elif args.command == "restore":
            result = restore(args)
        else:
            result = listing(args)
            if not args.json:
                print("\n".join(f"{entry['name']}  {entry['version']}" for entry in result))
    except LookupError as error:
        log(str(error.args[0]))
        return 2
    except BackupError as error:
        log(f"FAILED: {error}")
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
