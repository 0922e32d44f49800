"""The artifact registry: SQLite in the work directory (WAL mode, short transactions).

Tables
------
``artifacts``
    One row per artifact (qualified dark set, master dark/bias, calibrated light), keyed by its
    job key; status (``verified``, ``low_confidence``, ``superseded``, ``quarantined`` for
    masters; ``calibrated``, ``degraded``, ``quarantined`` for lights), confidence, the file path
    (relative to the work directory) and content hash, full provenance (JSON) and the report row
    the pipeline writes to CSV (JSON).
``jobs``
    One row per executed or skipped job: run id, start, end, duration, outcome, cache hit.
``runs``
    One row per ``darkflow run``: inputs, configuration, outcome, summary.
``file_hashes``
    Content hashes of input files, keyed by path and checked against size, mtime and inode (like
    a git index), so a rerun reads no byte of an unchanged file.
``file_nights``
    The observing night of each input file (from its header, under one ingest configuration),
    checked the same way, so ``darkflow nightly`` finds the nights of an unchanged archive
    without reading a header.
``nights``
    One row per night ``darkflow nightly`` calibrated: the fingerprints of its inputs, of the
    configuration and of its results, the results its reports were built from, its light counts
    and the masters its lights used; what makes a night new or changed.

Every query that ``plan``, ``status``, ``quarantine`` and ``nightly`` make is served by an index
(created when a registry written by an older darkflow is opened). A ``generation`` counter in
``meta``, kept by triggers, changes with every write to ``artifacts`` (whichever darkflow wrote
it), so a run can tell that nothing changed since the previous one.

Every path stored here is relative to the work directory (input paths excepted), so a work
directory can be copied or moved. A damaged database file gives a :class:`RegistryError` that
says what to do, never a raw ``sqlite3`` error.

Crash safety: an artifact file is written atomically first and only then registered, so a row
never points at a missing or half-written file; :meth:`Registry.verify_files` removes rows whose
file vanished (e.g. deleted by hand). Concurrency: WAL journal, ``busy_timeout``, and every write
in its own ``BEGIN IMMEDIATE`` transaction; artifact rows are idempotent (same key, same bytes).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from darkflow.exceptions import RegistryError
from darkflow.io.atomic import disk_full_error, is_disk_full
from darkflow.io.hashing import file_hash
from darkflow.io.paths import from_printable, printable
from darkflow.model import ArtifactKind
from darkflow.registry.events import dumps

__all__ = ["ArtifactRow", "MasterRow", "Registry"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    content_hash TEXT,
    config_signature TEXT,
    night TEXT,
    session TEXT,
    status TEXT NOT NULL,
    confidence REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    run_id TEXT,
    provenance TEXT NOT NULL,
    record TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_lookup ON artifacts (kind, config_signature, status);
CREATE INDEX IF NOT EXISTS artifacts_id ON artifacts (id);
CREATE INDEX IF NOT EXISTS artifacts_id_updated ON artifacts (id, updated_at);
CREATE INDEX IF NOT EXISTS artifacts_path ON artifacts (path, updated_at);
CREATE INDEX IF NOT EXISTS artifacts_night ON artifacts (kind, config_signature, night);
CREATE INDEX IF NOT EXISTS artifacts_by_night ON artifacts (night, kind);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    duration_s REAL,
    outcome TEXT NOT NULL,
    cache_hit INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs (run_id);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    pid INTEGER,
    host TEXT,
    pid_start TEXT,
    inputs TEXT,
    config TEXT,
    outcome TEXT,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_outcome ON runs (outcome);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_nights (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    ingest TEXT NOT NULL,
    night TEXT
);
CREATE TABLE IF NOT EXISTS nights (
    night TEXT PRIMARY KEY,
    inputs TEXT,
    config TEXT,
    results TEXT,
    reports TEXT,
    counts TEXT,
    masters TEXT,
    n_files INTEGER,
    run_id TEXT,
    updated_at TEXT
);
CREATE TRIGGER IF NOT EXISTS artifacts_generation_insert AFTER INSERT ON artifacts BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS artifacts_generation_update AFTER UPDATE ON artifacts BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER IF NOT EXISTS artifacts_generation_delete AFTER DELETE ON artifacts BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
"""


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot, from ``/proc``), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()  # field 22 of the line; 3..: after "pid (comm)"
    except (OSError, IndexError):
        return None


def _same_process(pid: int, started: str | None) -> bool:
    """Whether ``pid`` is alive and (when known) still the process that started the run."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    now = _process_start(pid)
    return started is None or now is None or now == started


def _damaged(err: sqlite3.Error) -> bool:
    """A malformed database file (not a lock, a full disk or a bad statement)."""
    name = getattr(err, "sqlite_errorname", "")
    if "Could not decode to UTF-8" in str(err):  # bytes overwritten inside a stored record
        return True
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or type(err) is sqlite3.DatabaseError


#: files hashed at once (BLAKE2b lets go of the GIL on big buffers: the cores share the work)
HASH_THREADS = 4


def _hash_files(paths: list[str]) -> Iterator[str]:
    """Content hashes of ``paths``, in order, a few files at once in threads (each file's hash
    is its own bytes': the result is the serial one)."""
    workers = min(len(paths), os.cpu_count() or 1, HASH_THREADS)
    if workers <= 1:
        yield from map(file_hash, paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(file_hash, paths)


def _registry_error(path: Path, err: sqlite3.Error, doing: str) -> Exception:
    if is_disk_full(err):  # not the registry's fault: the one message a full disk gives
        return disk_full_error(err)
    if _damaged(err):
        return RegistryError(
            f"the registry {path} is damaged ({err}). Its artifacts are intact on disk: move it "
            f"aside (mv {path.name} {path.name}.damaged) and run the night again; darkflow then "
            "builds a new registry, reusing the masters it finds and recalibrating the lights"
        )
    return RegistryError(f"registry {path}: cannot {doing}: {err}")


def _guarded(method):
    """Turn sqlite errors of a registry method into a :class:`RegistryError`."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise _registry_error(self.path, err, method.__name__.strip("_")) from err

    return wrapper


def _missing(path: str) -> bool:
    """No file at ``path`` (as ``Path.exists``: another error, e.g. no permission, raises)."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return True
        raise
    except ValueError:  # a name no file can have
        return True
    return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _dumps(obj: Any) -> str:
    return dumps(obj, sort_keys=True)


@dataclass(frozen=True)
class ArtifactRow:
    """One row of the registry's ``artifacts`` table."""

    key: str
    id: str
    kind: str
    path: str | None
    content_hash: str | None
    config_signature: str | None
    night: str | None
    session: str | None
    status: str
    confidence: float | None
    created_at: str
    updated_at: str
    run_id: str | None
    provenance: dict[str, Any]
    record: dict[str, Any] | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> ArtifactRow:
        """The row of a SQLite query result (JSON columns decoded)."""
        values = dict(row)
        values["provenance"] = json.loads(values["provenance"] or "{}")
        values["record"] = json.loads(values["record"]) if values["record"] else None
        return cls(**values)


@dataclass(frozen=True)
class MasterRow:
    """A master's row as planning reads it: its columns and the ``meta`` of its record only."""

    key: str
    id: str
    kind: str
    path: str | None
    content_hash: str | None
    config_signature: str | None
    night: str | None
    status: str
    confidence: float | None
    meta: dict[str, Any]


class Registry:
    """Open (creating if needed) ``<workdir>/registry.sqlite``.

    One ``Registry`` may be shared by threads; each thread gets its own connection.
    """

    @_guarded
    def __init__(self, workdir: str | Path, *, timeout_s: float = 60.0):
        self.workdir = Path(workdir).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / "registry.sqlite"
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._connect().executescript(_SCHEMA)  # idempotent; executescript commits by itself
        self._add_missing_columns(
            "runs", {"host": "TEXT", "pid_start": "TEXT", "fingerprint": "TEXT", "state": "TEXT"}
        )
        self._hashes: dict[str, tuple[int, int, int, str]] = {}  # path -> stat and hash
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            if db.execute("SELECT 1 FROM meta WHERE key='generation'").fetchone() is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('generation', '0')")
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.path} was written by a newer darkflow (schema {row[0]} > {SCHEMA_VERSION})"
                )

    def _add_missing_columns(self, table: str, columns: dict[str, str]) -> None:
        """Columns added after a registry was created (older work directories)."""
        db = self._connect()
        have = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                with contextlib.suppress(sqlite3.OperationalError):  # added by a concurrent run
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    # ------------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            except sqlite3.Error as err:
                raise _registry_error(self.path, err, "open it") from err
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            if _damaged(err):
                raise _registry_error(self.path, err, "write") from err
            raise RegistryError(f"registry {self.path} is locked or unreadable: {err}") from err
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's database connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ file hashes
    @_guarded
    def content_hash(self, path: str | Path) -> str:
        """Content hash of an input file, from the cache when size, mtime and inode match."""
        return self.content_hashes([path])[str(path)]

    @_guarded
    def content_hashes(
        self,
        paths: Iterable[str | Path],
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, str]:
        """Content hashes of input files (path -> hash), like a git index.

        A file whose size, mtime and inode are those recorded when it was hashed is not read;
        the others are hashed (``progress("hashing", done, total)`` counts them) and recorded in
        one transaction. The lookups go by primary key, a few hundred paths a query.

        Raises
        ------
        OSError
            A file cannot be read (deleted, no permission).
        """
        paths = [str(p) for p in paths]
        stats = {p: os.stat(p) for p in dict.fromkeys(paths)}
        known = self._known_hashes([p for p in stats if p not in self._hashes])
        self._hashes.update(known)
        out: dict[str, str] = {}
        todo = []
        for p, st in stats.items():
            ident = (st.st_size, st.st_mtime_ns, st.st_ino)
            cached = self._hashes.get(p)
            if cached is not None and cached[:3] == ident:
                out[p] = cached[3]
            else:
                todo.append((p, ident))
        fresh = []
        digests = _hash_files([p for p, _ in todo])
        for i, (p, ident) in enumerate(todo):
            if progress is not None:
                progress("hashing", i, len(todo))
            digest = next(digests)
            out[p] = digest
            self._hashes[p] = (*ident, digest)
            fresh.append((printable(p), *ident, digest))
        if progress is not None and todo:
            progress("hashing", len(todo), len(todo))
        if fresh:
            with self._tx() as tx:
                tx.executemany(
                    "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, inode, hash) "
                    "VALUES (?,?,?,?,?)",
                    fresh,
                )
        return out

    def _known_hashes(self, paths: list[str]) -> dict[str, tuple[int, int, int, str]]:
        db = self._connect()
        by_name = {printable(p): p for p in paths}
        names = list(by_name)
        found = {}
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            rows = db.execute(
                "SELECT path, size, mtime_ns, inode, hash FROM file_hashes WHERE path IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for r in rows:
                found[by_name[r[0]]] = (r[1], r[2], r[3], r[4])
        return found

    # ------------------------------------------------------------------ file nights
    @_guarded
    def file_nights(self, stats: dict[str, tuple[int, int, int]], ingest: str) -> dict[str, Any]:
        """Recorded nights of these files (path -> night or ``None``), for the files whose
        (size, mtime_ns, inode) and ingest configuration are those recorded."""
        db = self._connect()
        by_name = {printable(p): p for p in stats}
        names = list(by_name)
        found: dict[str, Any] = {}
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            rows = db.execute(
                "SELECT path, size, mtime_ns, inode, ingest, night FROM file_nights WHERE path "
                f"IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for r in rows:
                path = by_name[r[0]]
                if (r[1], r[2], r[3]) == tuple(stats[path]) and r[4] == ingest:
                    found[path] = r[5]
        return found

    @_guarded
    def record_file_nights(
        self, nights: dict[str, Any], stats: dict[str, tuple[int, int, int]], ingest: str
    ) -> None:
        """Record the night of each file (read from its header) under its stat identity."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO file_nights (path, size, mtime_ns, inode, ingest, night) "
                "VALUES (?,?,?,?,?,?)",
                [(printable(p), *stats[p], ingest, n) for p, n in nights.items()],
            )

    # ------------------------------------------------------------------ nights
    @_guarded
    def night_records(self) -> dict[str, dict[str, Any]]:
        """Every night ``darkflow nightly`` recorded (night -> its row, JSON decoded)."""
        out = {}
        for r in self._connect().execute("SELECT * FROM nights ORDER BY night"):
            row = dict(r)
            for name in ("counts", "masters"):
                row[name] = json.loads(row[name]) if row[name] else None
            out[row["night"]] = row
        return out

    @_guarded
    def record_night(self, night: str, **values: Any) -> None:
        """Insert or update a night's row (``counts`` and ``masters`` are JSON-encoded)."""
        values = {k: (_dumps(v) if k in ("counts", "masters") else v) for k, v in values.items()}
        values["updated_at"] = _now()
        names = list(values)
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO nights (night) VALUES (?)", (night,))
            db.execute(
                f"UPDATE nights SET {', '.join(f'{n}=?' for n in names)} WHERE night=?",
                (*[values[n] for n in names], night),
            )

    @_guarded
    def generation(self) -> int:
        """Changes whenever an artifact row is written, updated or dropped (by any darkflow)."""
        row = self._connect().execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ artifacts
    @_guarded
    def put_artifact(
        self,
        *,
        key: str,
        id: str,
        kind: str,
        status: str,
        provenance: dict[str, Any],
        path: str | Path | None = None,
        content_hash: str | None = None,
        config_signature: str | None = None,
        night: str | None = None,
        session: str | None = None,
        confidence: float | None = None,
        run_id: str | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        """Register (or refresh) an artifact. Call only after its file is completely written.

        ``content_hash`` is the hash of the file as written (the writer knows it); without it the
        file is hashed here.
        """
        rel = None
        if path is not None:
            full = Path(path)
            if not full.is_absolute():
                full = self.workdir / full
            if not full.exists():
                raise RegistryError(f"refusing to register {kind} {id}: file {full} does not exist")
            rel = printable(os.path.relpath(full, self.workdir))
            if content_hash is None:
                content_hash = file_hash(full)
        now = _now()
        with self._tx() as db:
            if rel is not None:  # a file belongs to one artifact: older rows lose their claim
                db.execute("DELETE FROM artifacts WHERE path=? AND key<>?", (rel, key))
            db.execute(
                """INSERT INTO artifacts (key, id, kind, path, content_hash, config_signature, night,
                       session, status, confidence, created_at, updated_at, run_id, provenance, record)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(key) DO UPDATE SET path=excluded.path,
                       content_hash=excluded.content_hash, status=excluded.status,
                       confidence=excluded.confidence, updated_at=excluded.updated_at,
                       run_id=excluded.run_id, provenance=excluded.provenance,
                       record=excluded.record, night=excluded.night, session=excluded.session""",
                (
                    key,
                    id,
                    kind,
                    rel,
                    content_hash,
                    config_signature,
                    night,
                    session,
                    status,
                    confidence,
                    now,
                    now,
                    run_id,
                    _dumps(provenance),
                    _dumps(record) if record is not None else None,
                ),
            )

    @_guarded
    def get(self, key: str) -> ArtifactRow | None:
        """The artifact of content key ``key``, or ``None``."""
        row = self._connect().execute("SELECT * FROM artifacts WHERE key=?", (key,)).fetchone()
        return ArtifactRow.from_sql(row) if row else None

    @_guarded
    def get_by_id(self, artifact_id: str) -> ArtifactRow | None:
        """The newest artifact of short id ``artifact_id``, or ``None``."""
        row = (
            self._connect()
            .execute(
                "SELECT * FROM artifacts WHERE id=? ORDER BY updated_at DESC LIMIT 1",
                (artifact_id,),
            )
            .fetchone()
        )
        return ArtifactRow.from_sql(row) if row else None

    @_guarded
    def statuses_by_id(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """The statuses of the rows of each artifact id (an empty list: no such artifact)."""
        ids = sorted(set(ids))
        out: dict[str, list[str]] = {i: [] for i in ids}
        db = self._connect()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for aid, status in db.execute(
                f"SELECT id, status FROM artifacts WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[aid].append(status)
        return out

    @_guarded
    def latest_before(
        self,
        *,
        kind: str,
        config_signature: str,
        status: Iterable[str],
        night: str,
        inclusive: bool = False,
    ) -> Iterator[ArtifactRow]:
        """Artifacts of a kind and configuration from nights before ``night`` (or on it, with
        ``inclusive``), latest night first (then by key, descending), read as they are needed."""
        statuses = list(status)
        rows = self._connect().execute(
            f"""SELECT * FROM artifacts WHERE kind=? AND config_signature=?
                AND night {"<=" if inclusive else "<"} ?
                AND status IN ({",".join("?" * len(statuses))})
                ORDER BY night DESC, key DESC""",
            (kind, config_signature, night, *statuses),
        )
        for row in rows:
            yield ArtifactRow.from_sql(row)

    @_guarded
    def masters_of_night(self, night: str) -> dict[str, tuple[str, str | None]]:
        """The masters registered for a night: key -> (status, configuration signature)."""
        rows = self._connect().execute(
            "SELECT key, status, config_signature FROM artifacts WHERE night=? AND kind IN (?, ?)",
            (night, ArtifactKind.MASTER_DARK, ArtifactKind.MASTER_BIAS),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    @staticmethod
    def read_artifact(workdir: str | Path, artifact_id: str) -> ArtifactRow | None:
        """The latest row of an artifact id, read without writing to the work directory.

        For readers (notebooks, widgets) of a finished run: the database is opened read-only
        and, unless a ``-wal`` file holds unmerged writes, immutable (no lock or ``-shm`` file
        is created). ``None`` when there is no registry or no such artifact.

        Raises
        ------
        RegistryError
            The registry cannot be read.
        """
        path = Path(workdir) / "registry.sqlite"
        if not path.is_file():
            return None
        wal = Path(f"{path}-wal").exists()
        uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if wal else "&immutable=1")
        try:
            db = sqlite3.connect(uri, uri=True)
            try:
                db.row_factory = sqlite3.Row
                row = db.execute(
                    "SELECT * FROM artifacts WHERE id=? ORDER BY updated_at DESC LIMIT 1",
                    (artifact_id,),
                ).fetchone()
            finally:
                db.close()
            return ArtifactRow.from_sql(row) if row else None
        except (sqlite3.Error, ValueError, TypeError) as err:
            raise RegistryError(f"cannot read {artifact_id} from registry {path}: {err}") from err

    @_guarded
    def artifacts(
        self,
        *,
        kind: str | None = None,
        config_signature: str | None = None,
        status: str | Iterable[str] | None = None,
        night: str | None = None,
    ) -> list[ArtifactRow]:
        """Artifacts filtered by kind, configuration signature, status and night."""
        where, args = [], []
        if night is not None:
            where.append("night=?")
            args.append(night)
        if kind is not None:
            where.append("kind=?")
            args.append(kind)
        if config_signature is not None:
            where.append("config_signature=?")
            args.append(config_signature)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        sql = "SELECT * FROM artifacts" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY created_at, key"
        return [ArtifactRow.from_sql(r) for r in self._connect().execute(sql, args)]

    @_guarded
    def master_rows(
        self,
        *,
        kind: str,
        config_signature: str,
        status: Iterable[str] | None = None,
        night: str | None = None,
    ) -> list[MasterRow]:
        """The masters of a kind and configuration (and ``night``) that have a ``meta`` in
        their record, in the order of :meth:`artifacts`.

        Planning asks this of every master of a configuration, every run, so SQLite extracts
        the ``meta`` (~0.5 KB) and the rest of the record and the provenance (~12 KB a master)
        are never decoded: a year of nights costs milliseconds, not a second.
        """
        cols = "key, id, kind, path, content_hash, config_signature, night, status, confidence"
        where, args = "kind=? AND config_signature=?", [kind, config_signature]
        statuses = None if status is None else list(status)
        if night is not None:
            where += " AND night=?"
            args.append(night)
        if statuses is not None:
            where += f" AND status IN ({','.join('?' * len(statuses))})"
            args += statuses
        sql = (
            f"SELECT {cols}, json_extract(record, '$.meta') AS meta FROM artifacts "
            f"WHERE {where} AND json_type(record, '$.meta') = 'object' "
            "ORDER BY created_at, key"
        )
        try:
            rows = self._connect().execute(sql, args).fetchall()
        except sqlite3.OperationalError as err:
            if "JSON" not in str(err) and "no such function" not in str(err):
                raise
            # a record that is not strict JSON, or an SQLite without JSON: decoded here
            rows = self.artifacts(
                kind=kind, config_signature=config_signature, status=statuses, night=night
            )
            return [
                MasterRow(**{c: getattr(r, c) for c in cols.split(", ")}, meta=r.record["meta"])
                for r in rows
                if r.record and isinstance(r.record.get("meta"), dict)
            ]
        return [MasterRow(**{**dict(r), "meta": json.loads(r["meta"])}) for r in rows]

    @_guarded
    def set_status(
        self, key: str, status: str, *, reason: str | None = None, confidence: float | None = None
    ) -> None:
        """Set an artifact's status (and the reason, kept in its provenance; and its confidence
        when given); an unknown key raises :class:`RegistryError`."""
        with self._tx() as db:
            row = db.execute("SELECT provenance FROM artifacts WHERE key=?", (key,)).fetchone()
            if row is None:
                raise RegistryError(f"no artifact with key {key}")
            prov = json.loads(row[0])
            if reason:
                prov.setdefault("status_history", []).append(
                    {"status": status, "reason": reason, "at": _now()}
                )
            db.execute(
                "UPDATE artifacts SET status=?, updated_at=?, provenance=? WHERE key=?",
                (status, _now(), _dumps(prov), key),
            )
            if confidence is not None:
                db.execute("UPDATE artifacts SET confidence=? WHERE key=?", (confidence, key))

    @_guarded
    def artifact_at(self, path: str | Path) -> ArtifactRow | None:
        """The artifact whose file is ``path`` (absolute, or relative to the work directory)."""
        full = Path(path) if Path(path).is_absolute() else self.workdir / path
        rel = printable(os.path.relpath(full, self.workdir))
        row = (
            self._connect()
            .execute(
                "SELECT * FROM artifacts WHERE path=? ORDER BY updated_at DESC LIMIT 1", (rel,)
            )
            .fetchone()
        )
        return ArtifactRow.from_sql(row) if row else None

    @_guarded
    def refresh(
        self, key: str, *, content_hash: str | None = None, record: dict[str, Any] | None = None
    ) -> None:
        """Update an artifact's content hash and/or record (its file was checked again)."""
        sets, args = ["updated_at=?"], [_now()]
        if content_hash is not None:
            sets.append("content_hash=?")
            args.append(content_hash)
        if record is not None:
            sets.append("record=?")
            args.append(_dumps(record))
        with self._tx() as db:
            db.execute(f"UPDATE artifacts SET {', '.join(sets)} WHERE key=?", (*args, key))

    @_guarded
    def check_database(self) -> None:
        """Read every page of the database (``PRAGMA quick_check``); raise if it is damaged."""
        problems = [r[0] for r in self._connect().execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise _registry_error(
                self.path,
                sqlite3.DatabaseError(
                    f"database disk image is malformed: {'; '.join(problems[:3])}"
                ),
                "check it",
            )

    @_guarded
    def forget(self, keys: Iterable[str]) -> None:
        """Drop these artifact rows (their files are gone or not to be trusted): rebuilt next run."""
        with self._tx() as db:
            db.executemany("DELETE FROM artifacts WHERE key=?", [(k,) for k in keys])

    def file_of(self, row: ArtifactRow | MasterRow) -> Path | None:
        """The artifact's file in the work directory, or ``None`` when it has none."""
        return None if row.path is None else self.workdir / from_printable(row.path)

    @_guarded
    def verify_files(self) -> list[str]:
        """Drop rows whose artifact file is missing; return their keys."""
        rows = self._connect().execute("SELECT key, path FROM artifacts WHERE path IS NOT NULL")
        root = os.fspath(self.workdir)  # strings: every run checks every artifact of the archive
        gone = [key for key, path in rows if _missing(os.path.join(root, from_printable(path)))]
        if gone:
            with self._tx() as db:
                db.executemany("DELETE FROM artifacts WHERE key=?", [(k,) for k in gone])
        return gone

    # ------------------------------------------------------------------ runs and jobs
    @_guarded
    def start_run(self, *, inputs: Iterable[str], config: dict[str, Any]) -> str:
        """Record the start of a run (its inputs and configuration); return its id."""
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        pid = os.getpid()
        with self._tx() as db:
            db.execute(
                """INSERT INTO runs (run_id, started_at, pid, host, pid_start, inputs, config,
                       outcome) VALUES (?,?,?,?,?,?,?,?)""",
                (
                    run_id,
                    _now(),
                    pid,
                    socket.gethostname(),
                    _process_start(pid),
                    _dumps(list(inputs)),
                    _dumps(config),
                    "running",
                ),
            )
        return run_id

    @_guarded
    def mark_dead_runs(self) -> list[str]:
        """Runs still ``running`` whose process is gone (kill -9, power loss, a full disk that
        stopped even the failure record) become ``interrupted``; returns their ids.

        Only runs of this host can be checked; a pid reused by another process is told apart by
        the process start time where the system gives it (Linux ``/proc``)."""
        host = socket.gethostname()
        rows = (
            self._connect()
            .execute("SELECT run_id, pid, host, pid_start FROM runs WHERE outcome='running'")
            .fetchall()
        )
        dead = [
            r
            for r in rows
            if (r["host"] or host) == host
            and r["pid"] is not None
            and not _same_process(r["pid"], r["pid_start"])
        ]
        for r in dead:
            summary = {"error": f"process {r['pid']} on {host} ended without finishing the run"}
            with self._tx() as db:
                db.execute(
                    "UPDATE runs SET outcome='interrupted', summary=? WHERE run_id=? "
                    "AND outcome='running'",
                    (_dumps(summary), r["run_id"]),
                )
        return [r["run_id"] for r in dead]

    @_guarded
    def last_finished_run(self) -> dict[str, Any] | None:
        """The latest run that is not running any more (its row), or ``None``."""
        row = (
            self._connect()
            .execute("SELECT * FROM runs WHERE outcome<>'running' ORDER BY started_at DESC LIMIT 1")
            .fetchone()
        )
        return dict(row) if row else None

    @_guarded
    def set_run_memo(self, run_id: str, *, fingerprint: str, state: str) -> None:
        """What a run saw (its inputs' fingerprint) and left (the work directory's state)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET fingerprint=?, state=? WHERE run_id=?",
                (fingerprint, state, run_id),
            )

    @_guarded
    def end_run(self, run_id: str, *, outcome: str, summary: dict[str, Any]) -> None:
        """Record the end of run ``run_id`` with its outcome and summary."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET ended_at=?, outcome=?, summary=? WHERE run_id=?",
                (_now(), outcome, _dumps(summary), run_id),
            )

    @_guarded
    def record_job(
        self,
        *,
        run_id: str,
        key: str,
        kind: str,
        label: str,
        started: float,
        ended: float,
        outcome: str,
        cache_hit: bool,
        failures: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record a job; ``started``/``ended`` are ``time.time()`` stamps."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO jobs (run_id, key, kind, label, started_at, ended_at, duration_s,
                       outcome, cache_hit, failures, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    run_id,
                    key,
                    kind,
                    printable(label),
                    datetime.fromtimestamp(started, UTC).isoformat(timespec="microseconds"),
                    datetime.fromtimestamp(ended, UTC).isoformat(timespec="microseconds"),
                    round(ended - started, 6),
                    outcome,
                    int(cache_hit),
                    failures,
                    _dumps(detail) if detail else None,
                ),
            )

    @_guarded
    def jobs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The jobs recorded (of one run, or of all), in the order they ran."""
        sql, args = "SELECT * FROM jobs", []
        if run_id:
            sql, args = sql + " WHERE run_id=?", [run_id]
        return [dict(r) for r in self._connect().execute(sql + " ORDER BY seq", args)]

    @_guarded
    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The ``limit`` most recent runs, newest first."""
        rows = self._connect().execute(
            "SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        )
        return [dict(r) for r in rows]

    @_guarded
    def summary(self) -> dict[str, Any]:
        """Counts of artifacts by kind and status, and the latest runs (``darkflow status``)."""
        db = self._connect()
        by_kind_status = [
            dict(r)
            for r in db.execute(
                "SELECT kind, status, COUNT(*) AS n FROM artifacts GROUP BY kind, status ORDER BY kind, status"
            )
        ]
        jobs = db.execute(
            "SELECT COUNT(*) AS n, COALESCE(SUM(cache_hit), 0) AS hits FROM jobs"
        ).fetchone()
        return {
            "artifacts": by_kind_status,
            "jobs": int(jobs["n"]),
            "cache_hits": int(jobs["hits"]),
            "cache_hit_rate": (jobs["hits"] / jobs["n"]) if jobs["n"] else None,
            "runs": self.runs(5),
        }
