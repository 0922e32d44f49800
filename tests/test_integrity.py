"""Artifacts are what they claim to be: content hashes, tamper detection, exact cache keys."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.integrity import (
    NIGHT,
    camera_night,
    flip_bytes,
    forget_loaded_masters,
    new_light,
    outputs,
)

from darkflow.cli import main
from darkflow.exceptions import RegistryError
from darkflow.io.hashing import file_hash
from darkflow.pipeline import run_night
from darkflow.registry import Registry
from darkflow.registry.events import read_events

CAMERA = "sgp_asi294mc"
LIGHT_DIR = f"{NIGHT}/{CAMERA}/NGC 7000"


@pytest.fixture
def night(tiny_night, tmp_path):
    return camera_night(tiny_night, tmp_path / "night", CAMERA)


def _events(workdir: Path, name: str) -> list[dict]:
    return [
        e
        for log in sorted((workdir / "logs").glob("*.jsonl"))
        for e in read_events(log)
        if e["event"] == name
    ]


def _used_master(workdir: Path, column: str = "master_id") -> Path:
    report = pd.read_csv(workdir / "frame_report.csv")
    master_id = report[column].dropna().iloc[0]
    with Registry(workdir) as reg:
        return reg.file_of(reg.get_by_id(master_id))


def _delivered(workdir: Path) -> Path:
    report = pd.read_csv(workdir / "frame_report.csv")
    return workdir / report["output_path"].dropna().iloc[0]


# ----------------------------------------------------------------------------- content hashes
@pytest.mark.integration
def test_every_artifact_has_its_content_hash(night, tmp_path):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    with Registry(w) as reg:
        rows = [r for r in reg.artifacts() if r.path is not None]
    assert {r.kind for r in rows} >= {"master_dark", "master_bias", "calibrated_light"}
    for row in rows:
        assert row.content_hash == file_hash(w / row.path), row.id


@pytest.mark.parametrize(
    ("restore_mtime", "column"),
    [(False, "master_id"), (True, "master_id"), (True, "bias_master_id")],
    ids=["dark-mtime-changed", "dark-mtime-restored", "bias-mtime-restored"],
)
@pytest.mark.integration
def test_tampered_master_is_rebuilt_before_a_new_light_uses_it(
    night, tmp_path, restore_mtime, column
):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    master = _used_master(w, column)
    genuine = master.read_bytes()
    flip_bytes(master, restore_mtime=restore_mtime)
    new_light(night / LIGHT_DIR / "NGC 7000_30sec_1x1_frame1.fit", "NGC 7000_30sec_1x1_frame9.fit")
    forget_loaded_masters()  # the reruns are new processes
    result = run_night(night, workdir=w)
    assert master.read_bytes() == genuine  # rebuilt, byte for byte
    assert (result.masters_built, result.lights_computed, result.artifacts_repaired) == (1, 1, 1)
    assert result.masters_reused == 1 and result.lights_reused == 2  # the bias, the two lights
    assert len(list((w / "corrupt").rglob("*.fits"))) == 1  # the damaged file, kept aside
    events = _events(w, "artifact_mismatch")
    assert [e["path"] for e in events] == [str(master.relative_to(w))]
    assert events[0]["action"] == "rebuild"
    reference = tmp_path / "reference"
    run_night(night, workdir=reference)  # the same inputs, never tampered with
    assert outputs(w) == outputs(reference)
    report = pd.read_csv(w / "frame_report.csv")
    fresh = pd.read_csv(reference / "frame_report.csv")
    cols = ["path", "status", "master_id", "confidence", "reasons", "output_path"]
    pd.testing.assert_frame_equal(report[cols], fresh[cols])


@pytest.mark.integration
def test_tampered_cached_light_is_recomputed(night, tmp_path):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    light = _delivered(w)
    genuine = light.read_bytes()
    flip_bytes(light, restore_mtime=False)
    result = run_night(night, workdir=w)
    assert result.lights_computed == 1
    assert light.read_bytes() == genuine
    events = _events(w, "artifact_mismatch")
    assert [e["path"] for e in events] == [str(light.relative_to(w))]


@pytest.mark.integration
def test_light_with_restored_mtime_is_found_by_verify(night, tmp_path, capsys):
    """A cached light is trusted on (size, mtime, inode); `darkflow verify` re-hashes it all."""
    w = tmp_path / "w"
    run_night(night, workdir=w)
    light, master = _delivered(w), _used_master(w)
    genuine_light, genuine_master = light.read_bytes(), master.read_bytes()
    flip_bytes(light, restore_mtime=True)
    flip_bytes(master, restore_mtime=True)
    assert main(["verify", str(w), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert str(light.relative_to(w)) in out and str(master.relative_to(w)) in out
    assert light.read_bytes() != genuine_light  # a dry run changes nothing
    assert main(["verify", str(w), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {p["path"] for p in report["problems"]} == {
        str(light.relative_to(w)),
        str(master.relative_to(w)),
    }
    assert all(p["problem"] == "content_mismatch" for p in report["problems"])
    assert not light.exists() and not master.exists()  # moved aside, kept for inspection
    assert len(list((w / "corrupt").rglob("*.fits"))) == 2
    forget_loaded_masters()
    run_night(night, workdir=w)
    assert light.read_bytes() == genuine_light and master.read_bytes() == genuine_master
    assert main(["verify", str(w)]) == 0
    assert "intact" in capsys.readouterr().out


@pytest.mark.integration
def test_verify_reports_missing_and_unregistered_files(night, tmp_path, capsys):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    light = _delivered(w)
    light.unlink()
    stray = w / "calibrated" / NIGHT / "stray.fits"
    stray.write_bytes(b"SIMPLE")
    assert main(["verify", str(w), "--format", "json"]) == 1
    problems = {p["path"]: p["problem"] for p in json.loads(capsys.readouterr().out)["problems"]}
    assert problems == {
        str(light.relative_to(w)): "missing",
        str(stray.relative_to(w)): "unregistered",
    }
    assert stray.exists()  # not ours to delete: only reported
    result = run_night(night, workdir=w)
    assert result.lights_computed == 1 and light.exists()


def test_verify_of_a_directory_without_registry(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no registry" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the registry
def _damage(path: Path, offset: int, length: int = 512) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xa5" * length)


def _filled_registry(tmp_path: Path) -> Path:
    with Registry(tmp_path) as reg:
        for i in range(300):
            reg.start_run(inputs=[f"/data/night-{i}/" + "x" * 200], config={"i": i})
    return tmp_path / "registry.sqlite"


def test_damaged_registry_page_gives_a_named_error(tmp_path):
    path = _filled_registry(tmp_path)
    _damage(path, path.stat().st_size // 2)
    with pytest.raises(RegistryError, match="damaged") as err:
        with Registry(tmp_path) as reg:
            reg.runs(1000)
    assert "registry.sqlite" in str(err.value) and "move it aside" in str(err.value)
    assert isinstance(err.value.__cause__, sqlite3.DatabaseError)


def test_registry_that_is_not_a_database(tmp_path, capsys):
    path = _filled_registry(tmp_path)
    _damage(path, 0, 100)
    with pytest.raises(RegistryError, match="damaged"):
        Registry(tmp_path)
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- cache keys
def test_index_fingerprint_sees_every_digit_of_the_glow_model():
    from darkflow.exposure.laws import GlowModel
    from darkflow.matching import CalibrationIndex
    from darkflow.pipeline.lights import index_fingerprint

    def index(rate: float) -> CalibrationIndex:
        glow = GlowModel(
            rate_grid=np.full((3, 4), rate),
            block=16,
            shape=(48, 64),
            method="decomposed",
            n_masters=3,
        )
        return CalibrationIndex(glow={"sig": glow})

    a, b = index(0.123456), index(0.123457)
    assert repr(a.glow["sig"]) == repr(b.glow["sig"])  # the old key could not tell them apart
    assert index_fingerprint(a, "sig") != index_fingerprint(b, "sig")
    assert index_fingerprint(a, "sig") == index_fingerprint(index(0.123456), "sig")


def test_fingerprint_refuses_objects_it_cannot_see_into():
    from darkflow.io.hashing import fingerprint

    class Opaque:
        pass

    assert fingerprint({"a": 1.0, "b": np.arange(3)}) == fingerprint({"b": np.arange(3), "a": 1.0})
    assert fingerprint(np.arange(3)) != fingerprint(np.arange(3).astype(np.float32))
    assert fingerprint(0.1) != fingerprint(0.1 + 1e-17 * 10)
    with pytest.raises(TypeError):
        fingerprint(Opaque())


@pytest.mark.integration
def test_index_cache_is_versioned_with_the_code_that_pickles_it(night, tmp_path, monkeypatch):
    from darkflow.pipeline import lights

    w = tmp_path / "w"
    run_night(night, workdir=w)
    first = sorted((w / "cache").glob("index-*.pkl"))
    assert len(first) == 1
    monkeypatch.setattr(lights, "index_cache_version", lambda: "some-other-code")
    run_night(night, workdir=w, config=None, force=True)  # the pipeline, not its memo
    assert len(sorted((w / "cache").glob("index-*.pkl"))) == 2  # not the old pickle


@pytest.mark.integration
def test_unreadable_or_foreign_index_cache_is_rebuilt(night, tmp_path):
    w = tmp_path / "w"
    run_night(night, workdir=w)
    before = pd.read_csv(w / "frame_report.csv")
    (cache,) = (w / "cache").glob("index-*.pkl")
    import pickle

    cache.write_bytes(pickle.dumps({"not": "an index"}))
    light = _delivered(w)
    light.unlink()  # one light to recompute with the index
    run_night(night, workdir=w)
    pd.testing.assert_frame_equal(
        pd.read_csv(w / "frame_report.csv").drop(columns=["cached"]),
        before.drop(columns=["cached"]),
    )


KERNEL_MODULES = ["darkflow.stats._numba", "darkflow.stats._image", "darkflow.stats._stars"]


@pytest.mark.parametrize("name", KERNEL_MODULES)
def test_numba_kernels_use_no_constants_from_other_modules(name):
    """numba freezes globals into its cache, which it invalidates only when the kernel's own file
    changes: a constant imported from another module must travel as an argument."""
    module = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(module))
    own = set()  # names bound in the kernel's own file: its cache sees their changes
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            own.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    kernels = [v for v in vars(module).values() if hasattr(v, "py_func")]
    assert kernels
    for kernel in kernels:
        for ref in kernel.py_func.__code__.co_names:
            if ref in own or ref not in module.__dict__:
                continue  # own names, attributes and builtins
            value = module.__dict__[ref]
            origin = getattr(value, "__module__", None) or ""
            if inspect.ismodule(value) or origin.split(".")[0] in ("numba", "numpy"):
                continue
            pytest.fail(f"{name}.{kernel.__name__} bakes in {ref} from another module")


def test_kernel_constants_travel_as_arguments(monkeypatch):
    """The MAD scale reaches the compiled combine at call time (a cached kernel cannot go stale)."""
    from darkflow.stats import MODE_MAD, _numba, combine_band, empty_planes

    stack = np.random.default_rng(0).normal(100.0, 5.0, (9, 4, 32)).astype(np.float32)

    def kept() -> np.ndarray:
        outs = empty_planes((4, 32))
        combine_band(
            stack, outs, hot_thr=np.full(9, np.inf), mode=MODE_MAD, sigma_low=1.5, sigma_high=1.5
        )
        return outs["n_used"].copy()

    before = kept()
    monkeypatch.setattr(_numba, "MAD_TO_STD", 0.5)
    assert (kept() < before).any()


@pytest.mark.integration
def test_work_directory_of_an_older_darkflow_is_adopted(night, tmp_path):
    """Rows without content hashes and with absolute output paths (written before this version):
    nothing is rebuilt, the hashes are recorded, the paths become relative."""
    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    before = outputs(w)
    db = sqlite3.connect(w / "registry.sqlite")
    rows = db.execute("SELECT key, record FROM artifacts WHERE kind='calibrated_light'").fetchall()
    for key, record in rows:
        rec = json.loads(record)
        if rec.get("output_path"):
            rec["output_path"] = str(w / rec["output_path"])
            rec.pop("output_inode")
        db.execute(
            "UPDATE artifacts SET record=?, content_hash=NULL WHERE key=?", (json.dumps(rec), key)
        )
    db.execute("UPDATE artifacts SET content_hash=NULL")
    db.commit()
    db.close()
    forget_loaded_masters()
    again = run_night(night, workdir=w)
    assert again.masters_built == 0 and again.lights_computed == 0
    assert again.lights_reused == first.lights_computed
    assert outputs(w) == before
    with Registry(w) as reg:
        for row in reg.artifacts():
            if row.path is not None:
                assert row.content_hash == file_hash(w / row.path)
            if row.kind == "calibrated_light" and row.record.get("output_path"):
                assert not Path(row.record["output_path"]).is_absolute()


@pytest.mark.integration
def test_recalibration_with_another_configuration_takes_over_the_output(night, tmp_path, capsys):
    """One output file per light: the row of the older calibration goes with its bytes."""
    from darkflow.config import Config

    w = tmp_path / "w"
    first = run_night(night, workdir=w)
    changed = Config().with_overrides(subtract={"pedestal_adu": 100.0})
    assert run_night(night, workdir=w, config=changed).lights_computed == first.lights_computed
    with Registry(w) as reg:
        paths = [r.path for r in reg.artifacts(kind="calibrated_light") if r.path]
    assert len(paths) == len(set(paths)) == first.lights_computed
    assert main(["verify", str(w)]) == 0, capsys.readouterr().out
    back = run_night(night, workdir=w)  # the first configuration again: computed again
    assert back.lights_computed == first.lights_computed


@pytest.mark.integration
def test_master_damaged_in_its_header_is_corrupt_not_merely_unreadable(night, tmp_path):
    from darkflow.exceptions import ArtifactCorruptError
    from darkflow.master import read_master

    w = tmp_path / "w"
    run_night(night, workdir=w)
    master = _used_master(w)
    recorded = file_hash(master)
    with open(master, "r+b") as fh:  # the DFMETA card, where the metadata lives
        text = fh.read(2880 * 3)
        fh.seek(text.index(b"DFMETA"))
        fh.write(b"XXXXXX")
    with pytest.raises(ArtifactCorruptError) as err:
        read_master(master, content_hash=recorded)
    assert err.value.expected == recorded and err.value.found == file_hash(master)


@pytest.mark.parametrize("order", ["file order", "headers first", "last plane only"])
def test_hashing_reader_hashes_every_byte_once_whatever_astropy_reads(tmp_path, order):
    from astropy.io import fits

    from darkflow.io.hashing import HashingReader

    path = tmp_path / "x.fits"
    planes = [fits.ImageHDU(np.arange(i * 700, dtype=np.float32).reshape(-1, 7)) for i in (1, 3)]
    fits.HDUList([fits.PrimaryHDU(np.zeros((5, 9), np.uint16)), *planes]).writeto(path)
    reader = HashingReader(path)
    with fits.open(reader, memmap=False) as hdul:
        if order == "file order":
            [hdu.data for hdu in hdul]
        elif order == "headers first":
            [hdu.header for hdu in hdul]
            [hdu.data for hdu in hdul]
        else:
            assert hdul[-1].data.shape == (300, 7)
    assert reader.hexdigest() == file_hash(path)
    if order == "file order":
        assert reader.tail < 3 * 2880  # only the padding after each data section


@pytest.mark.integration
def test_tampered_master_found_while_the_index_is_built(night, tmp_path, monkeypatch):
    """The index reads the masters in the driver: a damaged one is rebuilt, never summarised."""
    from darkflow.config import Config

    w = tmp_path / "w"
    run_night(night, workdir=w)
    master = _used_master(w)
    genuine = master.read_bytes()
    flip_bytes(master, restore_mtime=True)
    forget_loaded_masters()
    from darkflow.pipeline import run as run_module

    original, seen = run_module.run_light_job, []

    def spy(spec):
        out = original(spec)
        seen.extend(out.corrupt)
        return out

    monkeypatch.setattr(run_module, "run_light_job", spy)
    changed = Config().with_overrides(scaling={"hot_sigma": 25.0})  # a new index, same masters
    result = run_night(night, workdir=w, config=changed)
    assert master.read_bytes() == genuine and result.masters_built == 1
    assert result.lights_computed > 0 and seen == []  # found by the driver before any job
    assert [e["path"] for e in _events(w, "artifact_mismatch")] == [str(master.relative_to(w))]
    reference = tmp_path / "reference"
    run_night(night, workdir=reference, config=changed)
    assert outputs(w) == outputs(reference)
