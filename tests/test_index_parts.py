"""The calibration index from per-master parts: the same index as from the pixels, only new
masters read, a damaged part measured again."""

from __future__ import annotations

import dataclasses
import math
import pickle
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_module
from helpers.integrity import forget_loaded_masters, outputs
from helpers.match import T0, Camera, library

from darkflow.config import Config
from darkflow.matching import LazyMaster, build_index
from darkflow.pipeline import run_night
from darkflow.pipeline.indexparts import IndexParts

H = timedelta(hours=1)
SPECS = [
    ("a", 120.0, -20.0, T0),
    ("b", 120.0, -14.0, T0),
    ("c", 120.0, -8.0, T0),
    ("d", 300.0, -14.0, T0),
    ("e", 60.0, -14.0, T0 + H),
]


def same(a, b, where="index") -> None:
    """Exact equality of two indexes: every field, every digit, every pixel, every dtype."""
    assert type(a) is type(b), where
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def lib():
    cam = Camera(noise_adu=0.3)
    entries, masters = library(cam, SPECS)
    return cam, entries, masters, cam.bias()  # one bias: each call draws new noise


def _build(lib, memo=None, load=None):
    cam, entries, masters, bias = lib
    reads: Counter = Counter()

    def load_master(mid):
        reads[mid] += 1
        return (load or masters.__getitem__)(mid)

    def load_bias():
        reads["bias"] += 1
        return bias

    keys = {mid: f"content-of-{mid}" for mid in masters}
    handle = LazyMaster("content-of-bias", load_bias)  # one handle: the bias is read once
    index = build_index(
        entries,
        load_master=load_master,
        biases={cam.signature: handle},
        master_biases=dict.fromkeys(masters, handle),
        config=Config(),
        memo=memo,
        master_keys=keys,
    )
    return index, reads


def test_index_from_parts_is_the_index_from_pixels(lib, tmp_path):
    plain, reads = _build(lib)
    assert set(reads.values()) == {1} and len(reads) == len(SPECS) + 1
    parts = IndexParts(tmp_path / "parts", {"config": Config().to_dict()["scaling"]})
    first, _ = _build(lib, parts)
    same(first, plain)
    measured = parts.misses
    assert parts.hits == 0 and measured == len(SPECS) + 2  # summaries, reference, bias

    def no_pixels(mid):
        raise AssertionError(f"master {mid} read although its parts are kept")

    again = IndexParts(tmp_path / "parts", {"config": Config().to_dict()["scaling"]})
    second, reads = _build(lib, again, load=no_pixels)
    same(second, plain)
    assert not reads and again.hits == measured and again.misses == 0
    # the kept parts are deterministic: measuring again writes the same bytes
    blobs = {p.name: p.read_bytes() for p in (tmp_path / "parts").iterdir()}
    _build(lib, IndexParts(tmp_path / "again", {"config": Config().to_dict()["scaling"]}))
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()} == blobs


def test_another_context_measures_again(lib, tmp_path):
    _build(lib, IndexParts(tmp_path / "parts", {"version": "1"}))
    other = IndexParts(tmp_path / "parts", {"version": "2"})
    _build(lib, other)
    assert other.hits == 0 and other.misses == len(SPECS) + 2


def test_a_damaged_part_is_measured_again(lib, tmp_path):
    plain, _ = _build(lib)
    ctx = {"config": "x"}
    first = IndexParts(tmp_path / "parts", ctx)
    _build(lib, first)
    summary = first.path(
        "summary", ("c", "content-of-c", "content-of-bias", "d", "content-of-d", "content-of-bias")
    )
    assert summary.exists()  # "d" (the strongest signal) is the reference
    blob = bytearray(summary.read_bytes())
    blob[-5] ^= 0xFF  # a flipped byte: the digest no longer matches
    summary.write_bytes(bytes(blob))
    info = first.path("bias_info", ("content-of-bias",))
    payload = pickle.dumps({"not": "a bias"})  # a valid digest over a foreign payload
    import hashlib

    info.write_bytes(
        b"darkflow-index-part 1\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    )
    truncated = first.path("bias_level", ("nothing",))
    truncated.write_bytes(b"darkflow-index-")
    assert (
        IndexParts(tmp_path / "parts", ctx).recall("bias_level", ("nothing",), lambda: 1.5) == 1.5
    )

    again = IndexParts(tmp_path / "parts", ctx)
    index, reads = _build(lib, again)
    same(index, plain)
    assert again.misses == 2 and reads == Counter({"c": 1, "bias": 1})
    repaired = IndexParts(tmp_path / "parts", ctx)
    _build(lib, repaired)
    assert repaired.misses == 0  # both rewritten whole


# ----------------------------------------------------------------------------- the pipeline
def _archive(root: Path, nights) -> Path:
    bench = benchmark_module("bench_archive")
    return bench.simulate_archive(root, nights, shape=(40, 48), seed=2026, frames=5)


@pytest.mark.integration
def test_a_new_night_reads_only_its_own_masters(tmp_path, monkeypatch):
    """Adding a night to an archive: the index is assembled from the earlier masters' parts,
    and every output is byte-identical to the one from an index measured on all pixels."""
    from darkflow.matching import _index

    archive = _archive(tmp_path / "archive", range(3))
    extra = _archive(tmp_path / "extra", [3])
    kept, measured = tmp_path / "kept", tmp_path / "measured"
    run_night(archive, workdir=kept)
    assert list((kept / "cache" / "index-parts").glob("summary-*.part"))
    before = {p.name for p in (kept / "cache").glob("index-*.pkl")}
    shutil.copytree(kept, measured)
    shutil.rmtree(measured / "cache" / "index-parts")

    read: list[str] = []
    real = _index._Measure._pixels

    def spy(self):
        if self._read is None:
            read.append(self.master_id)
        return real(self)

    monkeypatch.setattr(_index._Measure, "_pixels", spy)
    results = {}
    for w in (kept, measured):
        read.clear()
        forget_loaded_masters()
        results[w] = run_night(extra, workdir=w)
        results[w, "read"] = list(read)
    assert len(results[kept, "read"]) == 1  # the new night's dark master, nothing else
    assert len(results[measured, "read"]) == 4  # every dark master of the configuration
    assert results[kept, "read"][0] in results[measured, "read"]
    assert outputs(kept) == outputs(measured)
    indexes = {}
    for w in (kept, measured):
        (new,) = {p.name for p in (w / "cache").glob("index-*.pkl")} - before
        with open(w / "cache" / new, "rb") as fh:
            indexes[w] = pickle.load(fh)
    same(indexes[kept], indexes[measured])
