"""The openwebui role's backup script (roles/openwebui/files/openwebui_backup.py): consistent SQLite
copies of a live WAL database, retention, loud failures that keep the earlier backups, and restore."""

from __future__ import annotations

import errno
import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "roles/openwebui/files/openwebui_backup.py"


def _load():
    spec = importlib.util.spec_from_file_location("openwebui_backup", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backup = _load()

# A writer in another process, as the server is: it keeps its connection open and never
# checkpoints, so the newest rows exist only in webui.db-wal until the backup reads them.
WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
for line in sys.stdin:
    if line.strip() == "quit":
        break
    db.execute(line)
    print("ok", flush=True)
"""


class Writer:
    def __init__(self, database: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def execute(self, statement: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(statement + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=10)


def _make_database(path: Path, tables: dict[str, int]) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    for table, rows in tables.items():
        db.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, body TEXT)')
        db.executemany(f'INSERT INTO "{table}" (body) VALUES (?)', [(f"{table} {n}",) for n in range(rows)])
    db.commit()
    db.close()


@pytest.fixture(name="site")
def site_fixture(tmp_path):
    """A DATA_DIR as Open WebUI leaves it (webui.db, Chroma's vector_db/, uploads/) and a backup directory."""
    data, backups = tmp_path / "data", tmp_path / "backups"
    (data / "vector_db" / "0f1e").mkdir(parents=True)
    (data / "uploads").mkdir()
    backups.mkdir()
    _make_database(data / "webui.db", {"user": 2, "chat": 3, "file": 1})
    _make_database(data / "vector_db" / "chroma.sqlite3", {"embeddings": 4})
    (data / "vector_db" / "0f1e" / "data_level0.bin").write_bytes(b"\x01" * 4096)
    (data / "uploads" / "minutes.txt").write_text("minutes\n")
    # Open WebUI's cache is not data: never backed up.
    (data / "cache").mkdir()
    (data / "cache" / "model.bin").write_bytes(b"x")
    venv = tmp_path / "venvs" / "0.12.4"
    venv.mkdir(parents=True)
    (venv / ".selfhosted.ai_stack.json").write_text(json.dumps({"version": "0.12.4"}))
    (tmp_path / "current").symlink_to(venv)
    return data, backups, tmp_path / "current"


def _backup(capsys, data: Path, backups: Path, *extra: str) -> tuple[int, dict | None, str]:
    code = backup.main(
        ["backup", "--data-dir", str(data), "--backup-dir", str(backups), "--keep", "3", "--json", *extra]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def _rows(database: Path, table: str) -> int:
    db = sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)
    try:
        return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        db.close()


def test_backup_of_a_live_wal_database_holds_the_rows_still_in_the_wal(site, capsys):
    data, backups, current = site
    writer = Writer(data / "webui.db")
    try:
        writer.execute("INSERT INTO chat (body) VALUES ('only in the WAL')")
        writer.execute("INSERT INTO user (body) VALUES ('only in the WAL')")
        assert (data / "webui.db-wal").stat().st_size > 0
        code, result, err = _backup(capsys, data, backups, "--venv", str(current))
    finally:
        writer.close()
    assert code == 0, err
    copy = Path(result["path"])
    assert copy.parent == backups and copy.name == result["name"] and copy.name.endswith("-scheduled")
    # The backup API read the WAL: a plain copy of webui.db would have 3 chats.
    assert _rows(copy / "webui.db", "chat") == 4
    assert result["rows"]["webui.db"] == {"user": 3, "chat": 4, "file": 1}
    assert result["rows"]["vector_db/chroma.sqlite3"] == {"embeddings": 4}
    # Self-contained files: no -wal/-shm in the backup, and an intact database.
    assert sorted(p.name for p in copy.rglob("*") if p.is_file()) == [
        "backup.json",
        "chroma.sqlite3",
        "data_level0.bin",
        "minutes.txt",
        "webui.db",
    ]
    check = sqlite3.connect(f"file:{copy / 'webui.db'}?mode=ro&immutable=1", uri=True)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    check.close()
    manifest = json.loads((copy / "backup.json").read_text())
    assert manifest["version"] == "0.12.4" and manifest["venv"] == "0.12.4"
    assert manifest["integrity_check"] == "ok"
    assert manifest["files"] == {"webui.db": 1, "vector_db": 2, "uploads": 1}
    assert "backup" in err and "3 users, 4 chats" in err


def test_retention_keeps_the_newest_of_each_kind(site, capsys, monkeypatch):
    data, backups, _current = site
    stamps = iter(f"20261201T0000{n:02d}Z" for n in range(10))
    monkeypatch.setattr(backup, "utc_stamp", lambda now=None: next(stamps))
    code, upgrade, _err = _backup(capsys, data, backups, "--kind", "upgrade")
    assert code == 0
    names = []
    for _round in range(5):
        code, result, err = _backup(capsys, data, backups)
        assert code == 0, err
        names.append(result["name"])
    # --keep 3: the two oldest scheduled backups went, after the newer ones were complete.
    assert backup.backup_names(backups) == [upgrade["name"], *names[2:]]
    assert result["removed"] == [names[1]]


def test_incomplete_leftovers_are_never_listed_and_are_cleaned_up(site, capsys):
    data, backups, _current = site
    (backups / ".incomplete-20261201T000000Z-scheduled").mkdir()
    (backups / "20261201T000001Z-scheduled").mkdir()  # no backup.json: not a backup
    assert backup.backup_names(backups) == []
    code, result, _err = _backup(capsys, data, backups)
    assert code == 0
    assert not (backups / ".incomplete-20261201T000000Z-scheduled").exists()
    assert backup.backup_names(backups) == [result["name"]]


@pytest.mark.parametrize("where", ["uploads", "database"])
def test_a_full_disk_fails_loudly_and_keeps_the_earlier_backups(site, capsys, monkeypatch, where):
    data, backups, _current = site
    code, first, _err = _backup(capsys, data, backups, "--keep", "1")
    assert code == 0
    before = sorted(p.relative_to(backups) for p in backups.rglob("*"))

    def disk_full(*args, **kwargs):
        if where == "uploads":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backup, "copy_file" if where == "uploads" else "sqlite_backup", disk_full)
    time.sleep(1.1)  # another name than the first backup's
    code, _result, err = _backup(capsys, data, backups, "--keep", "1")
    assert code == 1
    assert "FAILED" in err and "no space left on the device" in err
    assert f"The earlier backups are untouched: {first['name']}" in err
    # --keep 1 removed nothing (pruning comes only after a complete backup), and no partial copy is left.
    assert sorted(p.relative_to(backups) for p in backups.rglob("*")) == before


def test_a_real_write_error_fails_the_backup(site, tmp_path):
    """The kernel refusing a write (here RLIMIT_FSIZE, as a full disk would with ENOSPC) fails the process."""
    data, backups, _current = site
    (data / "uploads" / "big.bin").write_bytes(b"\x00" * (512 * 1024))

    # The script under a file size limit of 256 KiB (Python ignores SIGXFSZ, so the write fails instead).
    limited = (
        "import resource, runpy, sys;"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024));"
        "sys.argv = sys.argv[1:];"
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    arguments = ["backup", "--data-dir", str(data), "--backup-dir", str(backups), "--keep", "2"]
    run = subprocess.run(
        [sys.executable, "-c", limited, str(SCRIPT), *arguments], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1, run.stderr
    assert "FAILED" in run.stderr and "File too large" in run.stderr
    assert backup.backup_names(backups) == []
    assert [p.name for p in backups.iterdir()] == [".lock"]


def test_nothing_to_back_up_and_bad_arguments(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    assert backup.main(["backup", "--data-dir", str(tmp_path), "--backup-dir", str(tmp_path / "b"), "--keep", "1"]) == 1
    assert "webui.db does not exist" in capsys.readouterr().err
    assert backup.main(["backup", "--data-dir", str(tmp_path), "--backup-dir", str(tmp_path / "b"), "--keep", "0"]) == 2


def test_restore_moves_the_current_data_aside_and_puts_the_backup_back(site, capsys):
    data, backups, _current = site
    code, saved, _err = _backup(capsys, data, backups)
    assert code == 0
    db = sqlite3.connect(data / "webui.db")
    db.execute("DELETE FROM user")
    db.commit()
    db.close()
    (data / "uploads" / "minutes.txt").unlink()
    (data / "uploads" / "later.txt").write_text("after the backup\n")

    assert backup.main(["restore", "--data-dir", str(data), "--backup-dir", str(backups), "latest", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["name"] == saved["name"]
    assert _rows(data / "webui.db", "user") == 2
    assert sorted(p.name for p in (data / "uploads").iterdir()) == ["minutes.txt"]
    assert _rows(data / "vector_db" / "chroma.sqlite3", "embeddings") == 4
    # Nothing deleted: what was there is in DATA_DIR/replaced/<time>-before-<backup>.
    aside = Path(result["replaced"])
    assert aside.parent == data / "replaced" and aside.name.endswith(f"-before-{saved['name']}")
    assert _rows(aside / "webui.db", "user") == 0
    assert (aside / "uploads" / "later.txt").exists()
    assert not (data / ".restore-incoming").exists()
    # The backup itself is still there, unchanged.
    assert backup.backup_names(backups) == [saved["name"]]
    assert _rows(Path(saved["path"]) / "webui.db", "user") == 2


def test_restore_of_a_backup_that_does_not_exist_lists_those_that_do(site, capsys):
    data, backups, _current = site
    code, saved, _err = _backup(capsys, data, backups)
    assert code == 0
    args = ["restore", "--data-dir", str(data), "--backup-dir", str(backups)]
    assert backup.main([*args, "20200101T000000Z-scheduled"]) == 2
    err = capsys.readouterr().err
    assert "no backup called '20200101T000000Z-scheduled'" in err and saved["name"] in err
    assert not (data / "replaced").exists()
    assert backup.main([*args, "latest"]) == 0
    empty = data.parent / "empty"
    empty.mkdir()
    assert backup.main(["restore", "--data-dir", str(data), "--backup-dir", str(empty), "latest"]) == 2


def test_restore_refuses_while_the_server_has_the_database_open(site, capsys):
    data, backups, _current = site
    assert _backup(capsys, data, backups)[0] == 0
    writer = Writer(data / "webui.db")
    try:
        writer.execute("INSERT INTO chat (body) VALUES ('live')")
        code = backup.main(["restore", "--data-dir", str(data), "--backup-dir", str(backups), "latest"])
    finally:
        writer.close()
    assert code == 1
    assert "is open in another process: stop open-webui" in capsys.readouterr().err
    assert not (data / "replaced").exists()


def test_restore_that_runs_out_of_space_changes_nothing(site, capsys, monkeypatch):
    data, backups, _current = site
    assert _backup(capsys, data, backups)[0] == 0
    (data / "uploads" / "later.txt").write_text("after the backup\n")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backup, "copy_file", disk_full)
    assert backup.main(["restore", "--data-dir", str(data), "--backup-dir", str(backups), "latest"]) == 1
    assert "Nothing was changed" in capsys.readouterr().err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_list(site, capsys):
    data, backups, current = site
    assert _backup(capsys, data, backups, "--venv", str(current))[0] == 0
    assert backup.main(["list", "--backup-dir", str(backups), "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["kind"] == "scheduled" and entry["version"] == "0.12.4"
