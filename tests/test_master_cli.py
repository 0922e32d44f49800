"""``python -m darkflow.master`` (the ``darkflow combine`` command) in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers.darks import header, planes_bytes, write_darks

from darkflow.config import CombineConfig
from darkflow.master import combine_files, main_combine, read_master, write_master

pytestmark = pytest.mark.integration  # the command line in a new process, on files


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "darkflow.master", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    return write_darks(tmp_path_factory.mktemp("cli"), n=5, shape=(24, 31), seed=8)


def test_combine_writes_the_master(darks, tmp_path):
    out = tmp_path / "m.fits"
    res = run(
        *darks.paths,
        "-o",
        out,
        "--memory-limit",
        "64MB",
        "--sigma-low",
        "3",
        "--sigma-high",
        "3",
        "--max-iters",
        "5",
        "--planes",
        "full",
    )
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout and "5 frames" in res.stdout
    got = read_master(out)
    want = combine_files(darks.paths, config=CombineConfig(memory_limit="64MB"))
    assert planes_bytes(got) == planes_bytes(want)


def test_options_reach_the_engine(darks, tmp_path):
    out = tmp_path / "m.fits"
    res = run(
        *darks.paths, "-o", out, "--scale", "mad", "--sigma-high", "2.5", "--max-iters", "2", "-q"
    )
    assert res.returncode == 0 and res.stdout == ""
    params = read_master(out).provenance["params"]
    assert (params["scale"], params["sigma_high"], params["max_iters"]) == ("mad", 2.5, 2)
    # the default [output]: auxiliary planes compressed
    assert read_master(out).provenance["planes"]["n_used"] == "compressed"


def test_bias_option(darks, tmp_path):
    bias_dir = tmp_path / "bias"
    hdrs = [header(imagetyp="Bias Frame", exptime=0.0) for _ in range(3)]
    biases = write_darks(bias_dir, n=3, shape=(24, 31), seed=9, dark=0.0, n_hot=0, headers=hdrs)
    bias_path = write_master(combine_files(biases.paths), tmp_path / "bias.fits")
    out = tmp_path / "dc.fits"
    assert (
        main_combine([*map(str, darks.paths), "-o", str(out), "--bias", str(bias_path), "-q"]) == 0
    )
    m = read_master(out)
    assert m.meta.bias_subtracted and not m.meta.includes_bias
    assert abs(np.median(m.data)) < 10


@pytest.mark.parametrize(
    "args,message",
    [
        (["{p0}", "-o", "{out}"], "at least 3"),
        (["{p0}", "{p1}", "{missing}", "-o", "{out}"], "not found"),
        (["{p0}", "{p1}", "{p2}", "-o", "{out}", "--memory-limit", "lots"], "memory size"),
        (["{p0}", "{p1}", "{p2}", "-o", "{out}", "--sigma-low", "-1"], "positive"),
        (["{p0}", "{p1}", "{p2}"], "required"),
        (["{p0}", "{p1}", "{p2}", "-o", "{out}", "--scale", "wild"], "invalid choice"),
        (["{p0}", "{p1}", "{odd}", "-o", "{out}"], "differ"),
        (["{p0}", "{p1}", "{p2}", "-o", "{out}", "--bias", "{missing}"], "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(darks, tmp_path, args, message):
    odd = tmp_path / "odd.fits"
    odd.write_bytes(
        darks.paths[3]
        .read_bytes()
        .replace(b"EXPTIME =                 60.0", b"EXPTIME =                 90.0")
    )
    subst = {f"p{i}": p for i, p in enumerate(darks.paths)}
    subst.update(out=tmp_path / "o.fits", missing=tmp_path / "nope.fits", odd=odd)
    res = run(*[a.format(**subst) for a in args])
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "o.fits").exists()


def test_allow_few(darks, tmp_path):
    out = tmp_path / "one.fits"
    assert main_combine([str(darks.paths[0]), "-o", str(out), "--allow-few", "-q"]) == 0
    assert read_master(out).meta.n_frames == 1
