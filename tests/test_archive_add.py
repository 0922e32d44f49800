"""Adding a night to an archive touches what is new: the same choices, files and work
directory states as reading everything, and a changed old file is still noticed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from conftest import benchmark_module

from darkflow.exposure.laws import _bins, _window_coverage
from darkflow.io.paths import printable
from darkflow.matching import CalibrationIndex, MasterEntry
from darkflow.model import FrameType, MasterMeta
from darkflow.pipeline import run_night
from darkflow.pipeline.memo import workdir_state
from darkflow.pipeline.nights import Scope, write_night
from darkflow.pipeline.plan import (
    BiasChoice,
    _BiasLevels,
    _BiasPool,
    bias_rank,
    choose_bias,
    split_bias_sets,
)
from darkflow.registry import Registry
from darkflow.registry.events import dumps

T0 = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
SIG = "testcam_b1x1_g100_o50_rm-default_40x48"


# ----------------------------------------------------------------------------- bias choice
def _random_biases(rng, n: int, nights: list) -> list[BiasChoice]:
    out = []
    for i in range(n):
        night = nights[rng.integers(len(nights))]
        set_temp = None if rng.random() < 0.2 else float(rng.choice([-10.0, -9.8, -5.0]))
        temp = None if rng.random() < 0.2 else float(rng.normal(-9.0, 2.0))
        start = None if rng.random() < 0.1 else T0 + timedelta(hours=float(rng.uniform(0, 96)))
        meta = MasterMeta(
            config_signature=SIG,
            instrument="cam",
            exptime_s=0.0,
            temp_c=temp,
            set_temp_c=set_temp,
            n_frames=int(rng.integers(3, 6)),
            date_start_utc=start,
            date_end_utc=start and start + timedelta(hours=1),
            frame_kind=FrameType.BIAS,
        )
        out.append(BiasChoice(f"k{i:03d}", None, night, meta, bool(rng.random() < 0.8)))
    return out


def _frames(rng, nights: list, n: int):
    for _ in range(n):
        yield dict(
            night=nights[rng.integers(len(nights))],
            set_temp_c=None if rng.random() < 0.2 else float(rng.choice([-10.0, -5.0, 0.0])),
            temp_c=None if rng.random() < 0.2 else float(rng.normal(-9.0, 3.0)),
            when=None if rng.random() < 0.1 else T0 + timedelta(hours=float(rng.uniform(0, 96))),
        )


def test_choose_bias_is_the_best_ranked_of_all():
    """The night's own biases decide when one is at the frame's temperature: the choice is
    the one ranking every candidate gives, whatever the pool (nights without a bias, biases
    off temperature, no set-point, no time, None nights)."""
    rng = np.random.default_rng(7)
    nights = ["n1", "n2", "n3", "n4", None]
    for trial in range(60):
        pool = _random_biases(rng, int(rng.integers(1, 25)), nights[: 1 + trial % 5])
        for frame in _frames(rng, nights, 20):
            expected = min(pool, key=lambda b, f=frame: bias_rank(b, **f))
            assert choose_bias(pool, **frame) is expected


class _FakeRegistry:
    """A registry's verified biases of one configuration, answered by night as SQL does."""

    def __init__(self, biases: list[BiasChoice], workdir: Path):
        self.workdir, self.biases = workdir, biases
        self.nights_asked: list[str | None] = []

    def master_rows(self, *, kind, config_signature, status=None, night=None):
        self.nights_asked.append(night)
        return [
            SimpleNamespace(
                key=b.key,
                path=f"{b.key}.fits",
                night=b.night,
                status="verified",
                content_hash="h",
                meta=_meta_dict(b.meta),
            )
            for b in self.biases
            if night is None or b.night == night
        ]

    def file_of(self, row):
        return self.workdir / row.path


def _meta_dict(meta: MasterMeta) -> dict:
    from darkflow.pipeline.plan import master_meta_to_dict

    return master_meta_to_dict(meta)


def test_bias_pool_reads_the_library_only_for_a_night_without_its_bias(tmp_path):
    rng = np.random.default_rng(3)
    nights = ["n1", "n2", "n3", "n4"]
    library = [b for b in _random_biases(rng, 30, nights) if b.night != "n4"]
    for b in library:
        (tmp_path / f"{b.key}.fits").write_bytes(b"")
    for frame in _frames(rng, nights, 40):
        registry = _FakeRegistry(library, tmp_path)
        pool = _BiasPool([], registry)  # type: ignore[arg-type]
        chosen = pool.choose(SIG, **frame)
        expected = choose_bias(pool.all(SIG), **frame)
        assert (chosen and chosen.key) == (expected and expected.key)
        if frame["night"] is not None:
            assert pool.of_night(SIG, frame["night"]) == [
                b for b in pool.all(SIG) if b.night == frame["night"]
            ]
    # a night with its bias at the dark's set-point reads that night only
    registry = _FakeRegistry(library, tmp_path)
    own = next(b for b in library if b.meta.set_temp_c is not None)
    _BiasPool([], registry).choose(
        SIG,
        night=own.night,
        set_temp_c=own.meta.set_temp_c,  # type: ignore[arg-type]
        temp_c=None,
        when=None,
    )
    assert registry.nights_asked == [own.night]


# ----------------------------------------------------------------------------- index
def test_window_coverage_is_the_quadratic_count():
    """Exposure bins and frames of the masters within a temperature window of each master's
    temperature: the sweep gives what asking every master gives (ties, equal temperatures,
    repeated and near-equal exposures, an empty window)."""
    rng = np.random.default_rng(11)
    for trial in range(80):
        n = int(rng.integers(1, 40))
        grid = [-10.0, -9.5, -9.0, -5.0, -0.5, 0.0, -0.0, 0.5, 3.5]  # exact window edges
        temps = rng.choice(grid, n) + (rng.normal(0, 0.3, n) if trial % 3 == 2 else 0.0)
        use = [
            SimpleNamespace(
                temp_c=float(t),
                n_frames=int(rng.integers(1, 30)),
                exptime_s=float(rng.choice([60.0, 60.3, 120.0, 300.0, 301.0])),
            )
            for t in temps
        ]
        window = float(rng.choice([0.0, 0.05, 0.5, 1.0, 2.0, 40.0]))
        cover = _window_coverage(use, window, 0.01)
        for tc in {u.temp_c for u in use} | {float(t) for t in temps}:
            near = [s for s in use if abs(s.temp_c - tc) <= window]
            expected = (
                len(_bins([s.exptime_s for s in near], 0.01)),
                sum(s.n_frames for s in near),
            )
            assert cover(tc) == expected, (trial, tc)
    nan = [SimpleNamespace(temp_c=math.nan, n_frames=1, exptime_s=60.0)]
    assert _window_coverage(nan, 1.0, 0.01)(1.0) == (0, 0)


def test_index_entries_sorted_once_as_added_one_by_one():
    rng = np.random.default_rng(5)
    entries = []
    for i in range(40):
        meta = MasterMeta(
            config_signature=f"sig{i % 3}",
            instrument="cam",
            exptime_s=float(rng.choice([60.0, 120.0])),
            temp_c=None if i % 7 == 0 else float(rng.choice([-10.0, -5.0])),
            set_temp_c=None,
            n_frames=5,
        )
        entries.append(MasterEntry(master_id=f"m{rng.integers(5)}{i:02d}", meta=meta, path=""))
    one_by_one = CalibrationIndex()
    for e in entries:
        one_by_one.add(e)
    at_once = CalibrationIndex.from_entries(entries)
    assert list(at_once.entries) == list(one_by_one.entries)
    for sig, bucket in one_by_one.entries.items():
        assert [id(e) for e in at_once.entries[sig]] == [id(e) for e in bucket]


# ----------------------------------------------------------------------------- registry
def _register(reg: Registry, workdir: Path, key: str, night: str, record, status="verified"):
    path = workdir / f"{key}.fits"
    path.write_bytes(key.encode())
    reg.put_artifact(
        key=key,
        id=key[:16],
        kind="master_bias",
        status=status,
        provenance={"x": 1},
        path=path,
        config_signature=SIG,
        night=night,
        record=record,
    )


def test_master_rows_are_the_artifacts_with_their_meta(tmp_path):
    with Registry(tmp_path) as reg:
        _register(
            reg,
            tmp_path,
            "a" * 20,
            "n1",
            {"meta": {"exptime_s": 0.0, "t": 1e-05}, "stats": {"big": list(range(50))}},
        )
        _register(reg, tmp_path, "b" * 20, "n2", {"meta": {"exptime_s": 0.1}}, "low_confidence")
        _register(reg, tmp_path, "c" * 20, "n2", {"stats": {}})  # no meta: left out
        _register(reg, tmp_path, "d" * 20, "n2", None)  # no record: left out
        _register(reg, tmp_path, "e" * 20, "n3", {"meta": {"nested": {"x": [1, "é"]}}})

        def expected(**kw):
            return [
                (r.key, r.night, r.status, r.record["meta"])
                for r in reg.artifacts(kind="master_bias", config_signature=SIG, **kw)
                if r.record and "meta" in r.record
            ]

        def got(**kw):
            rows = reg.master_rows(kind="master_bias", config_signature=SIG, **kw)
            return [(r.key, r.night, r.status, r.meta) for r in rows]

        assert got() == expected() and len(got()) == 3
        assert (
            got(night="n2")
            == expected(night="n2")
            == [("b" * 20, "n2", "low_confidence", {"exptime_s": 0.1})]
        )
        assert got(status=["verified"]) == expected(status=["verified"])
        # a record that is not strict JSON (NaN, written by hand or an old tool) is decoded here
        db = sqlite3.connect(tmp_path / "registry.sqlite")
        db.execute('UPDATE artifacts SET record=\'{"meta": {"v": NaN}}\' WHERE key=?', ("e" * 20,))
        db.commit()
        db.close()
        rows = reg.master_rows(kind="master_bias", config_signature=SIG, night="n3")
        assert [r.key for r in rows] == ["e" * 20] and list(rows[0].meta) == ["v"]
        v = rows[0].meta["v"]  # decoded by Python, or by an SQLite that reads JSON5 (null)
        assert v is None or math.isnan(v)


def test_verify_files_drops_only_rows_whose_file_is_gone(tmp_path):
    with Registry(tmp_path) as reg:
        for key in ("a" * 20, "b" * 20):
            _register(reg, tmp_path, key, "n1", {"meta": {}})
        (tmp_path / f"{'b' * 20}.fits").unlink()
        assert reg.verify_files() == ["b" * 20]
        assert [r.key for r in reg.artifacts()] == ["a" * 20]


# ----------------------------------------------------------------------------- work directory
def _reference_state(workdir: Path, generation: int) -> str:
    """workdir_state as first written: pathlib, relpath, every file under the directory."""
    h = hashlib.sha256(f"generation {generation}\n".encode())
    lines = []
    for root, dirs, files in os.walk(workdir):
        if Path(root) == workdir:
            dirs[:] = [d for d in dirs if d not in ("logs", "locks", "cache", "corrupt")]
            files = [f for f in files if not f.startswith(("registry.sqlite", ".darkflow-ignore"))]
        for f in files:
            st = os.stat(os.path.join(root, f), follow_symlinks=False)
            rel = printable(os.path.relpath(os.path.join(root, f), workdir))
            lines.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n")
    for line in sorted(lines):
        h.update(line.encode())
    return h.hexdigest()[:32]


def test_workdir_state_sees_every_old_file(tmp_path):
    w = tmp_path / "w"
    for rel in (
        "calibrated/2026-01-01/s/a.fits",
        "calibrated/2026-01-02/s/b.fits",
        "nights/2026-01-01/frame_report.csv",
        "artifacts/masters/c/sig/m.fits",
        "cache/index-parts/x.part",
        "logs/2026-01-01.jsonl",
        "registry.sqlite-wal",
        "catalog.csv",
        "nights/logs/kept.csv",
        os.fsdecode(b"calibrated/odd\xff.fits"),
    ):
        (w / rel).parent.mkdir(parents=True, exist_ok=True)
        (w / rel).write_bytes(b"x")
    state = workdir_state(w, 3)
    assert state == _reference_state(w, 3)
    assert workdir_state(w, 4) != state
    # what is not a result changes nothing
    (w / "logs" / "2026-01-01.jsonl").write_bytes(b"more")
    (w / "cache" / "index-parts" / "y.part").write_bytes(b"y")
    assert workdir_state(w, 3) == state
    # an old night's file touched, rewritten or removed is seen
    old = w / "calibrated" / "2026-01-01" / "s" / "a.fits"
    st = old.stat()
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    touched = workdir_state(w, 3)
    assert touched != state and touched == _reference_state(w, 3)
    old.unlink()
    assert workdir_state(w, 3) not in (state, touched)


# ----------------------------------------------------------------------------- night files
def test_night_decisions_written_as_encoded(tmp_path):
    """A run's decision lines go to its night's file as it encoded them, merged with the
    file's other lines in path order: the bytes the decode-and-encode path wrote."""
    night = tmp_path / "night"
    inputs = tmp_path / "in"
    old = [{"light_path": str(inputs / f"other/l{i}.fits"), "x": i, "v": 0.1} for i in (1, 3)]
    new = [
        {"light_path": str(inputs / "l2.fits"), "f": float("nan"), "e": "é", "n": np.float32(0.1)},
        {"light_path": str(inputs / os.fsdecode(b"l\xff.fits")), "big": list(range(5))},
    ]
    kwargs = dict(lights=[], masters=[], thermal=[], hists={}, registry=None)
    write_night(night, decisions=old, scope=Scope([inputs / "other"]), **kwargs)
    write_night(
        night,
        decisions=new,
        decision_texts=[dumps(d) for d in new],
        scope=Scope([inputs / "l2.fits", inputs / os.fsdecode(b"l\xff.fits")]),
        **kwargs,
    )
    got = (night / "decisions.jsonl").read_bytes()
    records = sorted([*old, *[json.loads(dumps(d)) for d in new]], key=lambda d: d["light_path"])
    expected = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    assert got == expected.encode("utf-8", "surrogateescape")


def test_bias_levels_kept_per_set_and_moved_from_one_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    legacy = {
        "k1": {"levels": {"h1": 100.0}, "noise": 2.0},
        "k2": {"levels": {"h2": 101.0}, "noise": 2.5},
    }
    (cache / "bias_levels.json").write_text(json.dumps(legacy))
    levels = _BiasLevels(cache)
    assert levels.get("k2") == legacy["k2"]
    assert not (cache / "bias_levels.json").exists()  # moved, once
    assert sorted(p.name for p in (cache / "bias-levels").iterdir()) == ["k1.json", "k2.json"]
    assert levels.get("k3") is None
    levels.put("k3", {"levels": {"h3": 99.0}, "noise": 1.0})
    assert _BiasLevels(cache).get("k3") == {"levels": {"h3": 99.0}, "noise": 1.0}
    (cache / "bias-levels" / "k1.json").write_text("{not json")
    assert _BiasLevels(cache).get("k1") is None  # a damaged entry is measured again


def _archive(root: Path, nights) -> Path:
    bench = benchmark_module("bench_archive")
    return bench.simulate_archive(root, nights, shape=(40, 48), seed=2026, frames=5)


def _bump_pixel(path: Path) -> None:
    """Other bytes in the same file name (a frame re-exported): one pixel one ADU higher."""
    with fits.open(path) as hdul:
        data = hdul[0].data.copy()
        header = hdul[0].header.copy()
    data[3, 4] += 1
    path.unlink()
    fits.writeto(path, data, header)


def test_adding_a_night_then_an_old_night_changed(tmp_path, monkeypatch):
    """A night added to an archive's work directory hashes its own frames only; a frame of
    an old night rewritten afterwards is noticed by its stat and reprocessed, with what
    depends on it, and nothing else is (not even a bias set's levels are read again)."""
    root = _archive(tmp_path / "data", range(2))
    new_night = _archive(tmp_path / "new", [2]) / "2026-01-03"
    workdir = tmp_path / "w"
    first = run_night(root, workdir=workdir)
    assert first.lights_computed == 10 and first.masters_built == 4

    import darkflow.pipeline.plan as plan_module
    from darkflow.registry import file_hash as real_hash

    measured: list[str] = []
    hashed: list[str] = []
    real_levels = plan_module._frame_levels
    monkeypatch.setattr(
        plan_module, "_frame_levels", lambda fset: measured.append(fset.night) or real_levels(fset)
    )
    monkeypatch.setattr(
        "darkflow.registry.file_hash", lambda p: hashed.append(str(p)) or real_hash(p)
    )
    added = run_night(new_night, workdir=workdir)
    assert added.lights_computed == 5 and added.masters_built == 2
    assert measured == ["2026-01-03"]
    assert len(hashed) == 15 and all(p.startswith(str(new_night)) for p in hashed)

    # the library grew: the old nights' lights are matched against it once
    hashed.clear()
    measured.clear()
    whole = run_night(root, workdir=workdir)
    assert whole.masters_built == whole.masters_judged == 0
    assert hashed == [] and measured == []  # old bias sets' levels come from their files

    light = sorted((root / "2026-01-01").rglob("LIGHT/*.fits"))[0]
    _bump_pixel(light)
    again = run_night(root, workdir=workdir)
    assert again.unchanged_since is None
    assert hashed == [str(light)]  # its size, mtime or inode changed: read again, alone
    assert (again.lights_computed, again.masters_built, again.masters_judged) == (1, 0, 0)
    assert measured == []

    dark = sorted((root / "2026-01-02").rglob("DARK/*.fits"))[0]
    _bump_pixel(dark)
    hashed.clear()
    changed = run_night(root, workdir=workdir)
    assert hashed == [str(dark)]
    assert changed.masters_built == 1  # that night's dark master, and the lights using it
    assert changed.lights_computed >= 5
    assert run_night(root, workdir=workdir).unchanged_since == changed.run_id


def test_split_bias_sets_reads_no_frame_of_a_known_set(tmp_path, monkeypatch):
    """The levels of a bias set already measured are not read again (one file a set)."""
    root = _archive(tmp_path / "data", [0])
    workdir = tmp_path / "w"
    run_night(root, workdir=workdir)
    import darkflow.pipeline.plan as plan_module
    from darkflow.config import Config
    from darkflow.pipeline.run import _frame_sets, _scan

    monkeypatch.setattr(plan_module, "_frame_levels", lambda fset: pytest.fail("frames read"))
    config = Config()
    scanned = _scan([root], config, workdir)
    with Registry(workdir) as reg:
        sets = split_bias_sets(
            _frame_sets(scanned, config), registry=reg, workdir=workdir, config=config
        )
    assert any(s.kind == FrameType.BIAS for s in sets)
    shutil.rmtree(workdir / "cache" / "bias-levels")
    monkeypatch.undo()
    with Registry(workdir) as reg:
        again = split_bias_sets(
            _frame_sets(scanned, config), registry=reg, workdir=workdir, config=config
        )
    assert [s.identity for s in again] == [s.identity for s in sets]


def test_stale_temporaries_removed_at_any_depth(tmp_path):
    from darkflow.io import remove_stale_temporaries

    deep = tmp_path / "calibrated" / "2026-01-01" / "s"
    deep.mkdir(parents=True)
    dead = deep / ".a.fits.999999.0123abcd.tmp.fits"
    dead.write_bytes(b"x")
    mine = deep / f".b.fits.{os.getpid()}.0123abcd.tmp"
    mine.write_bytes(b"x")
    kept = [deep / "a.fits", deep / ".hidden", tmp_path / "x.999999.0123abcd.tmp"]
    for p in kept:
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path, is_alive=lambda pid: pid == os.getpid()) == 1
    assert not dead.exists() and mine.exists() and all(p.exists() for p in kept)
