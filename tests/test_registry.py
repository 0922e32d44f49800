import multiprocessing as mp
import os
import sqlite3

import pytest

from darkflow.exceptions import RegistryError
from darkflow.registry import Registry


def test_artifact_lifecycle(tmp_path):
    reg = Registry(tmp_path)
    f = tmp_path / "artifacts" / "m.fits"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * 10)
    reg.put_artifact(
        key="k1",
        id="k1",
        kind="master_dark",
        status="verified",
        path=f,
        provenance={"inputs": ["a", "b"]},
        config_signature="sig",
        confidence=0.9,
    )
    row = reg.get("k1")
    assert row.path == "artifacts/m.fits" and row.provenance == {"inputs": ["a", "b"]}
    reg.set_status("k1", "superseded", reason="new darks")
    row = reg.get("k1")
    assert (
        row.status == "superseded" and row.provenance["status_history"][0]["reason"] == "new darks"
    )
    assert [r.key for r in reg.artifacts(kind="master_dark", status=["verified"])] == []
    f.unlink()
    assert reg.verify_files() == ["k1"] and reg.get("k1") is None


def test_refuses_to_register_missing_file(tmp_path):
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError, match="does not exist"):
        reg.put_artifact(
            key="k",
            id="k",
            kind="master_dark",
            status="verified",
            path=tmp_path / "nope.fits",
            provenance={},
        )


def test_hash_cache_detects_changes(tmp_path):
    reg = Registry(tmp_path)
    f = tmp_path / "in.fits"
    f.write_bytes(b"abc")
    h1 = reg.content_hash(f)
    assert reg.content_hash(f) == h1
    f.write_bytes(b"abd")
    os.utime(f, ns=(1, 1))
    assert reg.content_hash(f) != h1


def test_hashes_in_threads_are_the_files_hashes(tmp_path):
    from darkflow.io.hashing import file_hash

    paths = []
    for i in range(9):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(1000 + 300_000 * i))
        paths.append(str(p))
    seen = []
    reg = Registry(tmp_path / "r.sqlite")
    got = reg.content_hashes(paths, progress=lambda what, i, n: seen.append((i, n)))
    assert got == {p: file_hash(p) for p in paths}
    assert seen == [(i, 9) for i in range(10)]
    with pytest.raises(OSError):
        reg.content_hashes([*paths, str(tmp_path / "gone.bin")])


def test_jobs_runs_and_summary(tmp_path):
    reg = Registry(tmp_path)
    run = reg.start_run(inputs=["x"], config={"a": 1})
    reg.record_job(
        run_id=run,
        key="k",
        kind="master",
        label="m",
        started=1.0,
        ended=2.5,
        outcome="built",
        cache_hit=False,
    )
    reg.record_job(
        run_id=run,
        key="k",
        kind="master",
        label="m",
        started=3.0,
        ended=3.1,
        outcome="cached",
        cache_hit=True,
    )
    reg.end_run(run, outcome="ok", summary={"lights": 1})
    s = reg.summary()
    assert s["jobs"] == 2 and s["cache_hit_rate"] == 0.5
    assert reg.jobs(run)[0]["duration_s"] == 1.5


def _writer(workdir, start, n):
    reg = Registry(workdir)
    for i in range(start, start + n):
        (workdir / f"f{i}").write_bytes(b"x")
        reg.put_artifact(
            key=f"k{i}",
            id=f"k{i}",
            kind="calibrated_light",
            status="calibrated",
            path=workdir / f"f{i}",
            provenance={"i": i},
        )


def test_concurrent_writers_do_not_corrupt(tmp_path):
    Registry(tmp_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, s, 40)) for s in (0, 1000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reg = Registry(tmp_path)
    assert len(reg.artifacts()) == 80
    assert (
        sqlite3.connect(tmp_path / "registry.sqlite")
        .execute("PRAGMA integrity_check")
        .fetchone()[0]
        == "ok"
    )


def test_newer_schema_is_refused(tmp_path):
    Registry(tmp_path)
    db = sqlite3.connect(tmp_path / "registry.sqlite")
    db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(RegistryError, match="newer"):
        Registry(tmp_path)


def test_read_artifact_reads_without_writing(tmp_path):
    assert Registry.read_artifact(tmp_path, "m1") is None  # no registry at all
    f = tmp_path / "m.fits"
    f.write_bytes(b"x")
    with Registry(tmp_path) as reg:
        reg.put_artifact(
            key="k1",
            id="m1",
            kind="master_dark",
            status="verified",
            path=f,
            provenance={"assessed_with": {"verify": {"holdout_fraction": 0.3}}},
        )
    for extra in ("registry.sqlite-wal", "registry.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)  # a finished run: everything merged
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    row = Registry.read_artifact(tmp_path, "m1")
    assert row.key == "k1" and row.provenance["assessed_with"]["verify"]["holdout_fraction"] == 0.3
    assert Registry.read_artifact(tmp_path, "other") is None
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before
    (tmp_path / "registry.sqlite").write_bytes(b"not a database")
    with pytest.raises(RegistryError, match="cannot read m1"):
        Registry.read_artifact(tmp_path, "m1")
