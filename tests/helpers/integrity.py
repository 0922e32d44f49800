"""Helpers of the integrity tests: small camera nights, new lights, tampering, output bytes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

NIGHT = "2026-11-23"


def camera_night(tiny_night: Path, dest: Path, *cameras: str) -> Path:
    """A night folder holding only these camera folders of the tiny night (fast to run)."""
    for cam in cameras:
        shutil.copytree(tiny_night / NIGHT / cam, dest / NIGHT / cam)
    return dest


def new_light(src: Path, name: str, seed: int = 1, folder: Path | None = None) -> Path:
    """A copy of the light ``src`` with fresh noise (a new content hash), same header."""
    with fits.open(src) as hdul:
        data = hdul[0].data.astype(np.int32)
        header = hdul[0].header.copy()
    rng = np.random.default_rng(seed)
    data = np.clip(data + rng.integers(-5, 6, data.shape), 0, 65535).astype(np.uint16)
    out = (folder or src.parent) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, header).writeto(out)
    return out


def flip_bytes(path: Path, n: int = 4000, *, restore_mtime: bool) -> None:
    """Invert ``n`` bytes of the primary data in place: size and inode kept, mtime optionally."""
    st = os.stat(path)
    with fits.open(path) as hdul:
        start = hdul[0].fileinfo()["datLoc"]
        n = min(n, hdul[0].fileinfo()["datSpan"])
    with open(path, "r+b") as fh:
        fh.seek(start)
        chunk = bytearray(fh.read(n))
        fh.seek(start)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    if restore_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert after.st_size == st.st_size and after.st_ino == st.st_ino


def outputs(workdir: Path) -> dict[str, bytes]:
    """Bytes of every FITS artifact below the work directory, by relative path."""
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for sub in ("artifacts", "calibrated")
        for p in sorted((workdir / sub).rglob("*.fits"))
    }


def forget_loaded_masters() -> None:
    """What a new process starts with: no master kept in memory from an earlier run."""
    from darkflow.master import forget_masters
    from darkflow.pipeline import jobs

    forget_masters()
    jobs._GAINS.clear()
