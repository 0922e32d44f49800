"""Benchmark: what content hashes cost (masters verified as read, light outputs hashed as written).

    .venv/bin/python benchmarks/bench_integrity.py [--shape 2000x3000] [--repeat 5]

Builds one master (3 frames combined) and one calibrated-light-like file (float32 data and
``UNCERT``) of the given shape in a temporary folder, then times, best of ``--repeat`` with the
files in the page cache:

* reading every HDU with astropy (``memmap=False``): the floor of any master read;
* ``darkflow.master.read_master(path)`` and ``read_master(path, content_hash=...)``: the read
  hashes the bytes as astropy consumes them (one pass; only FITS padding is read twice);
* ``darkflow.io.hashing.file_hash``: a separate re-read and hash, what verification would cost
  without hashing on read (and what ``darkflow verify`` pays per file);
* writing the light file, and hashing it just after (what each calibrated light adds).

Prints a markdown table; copy it into ``benchmarks/RESULTS.md`` with the machine load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astropy.io import fits  # noqa: E402

from darkflow.io.fits import write_image  # noqa: E402
from darkflow.io.hashing import HashingReader, file_hash  # noqa: E402
from darkflow.master import combine_arrays, read_master, write_master  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="2000x3000", help="rows x columns")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split("x"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        master_path, light_path = Path(tmp) / "master.fits", Path(tmp) / "light.fits"
        frames = [rng.normal(500.0, 5.0, shape).astype(np.float32) for _ in range(3)]
        write_master(combine_arrays(frames), master_path)
        recorded = file_hash(master_path)
        light = frames[0] - 480.0

        def astropy_read():
            with fits.open(master_path, memmap=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data

        def write_light():
            write_image(light_path, light, extensions={"UNCERT": np.abs(light)})

        rows = [
            ("astropy: read every HDU", astropy_read),
            ("read_master (hashes as it reads)", lambda: read_master(master_path)),
            (
                "read_master, verified against the recorded hash",
                lambda: read_master(master_path, content_hash=recorded),
            ),
            ("file_hash of the master (a separate pass)", lambda: file_hash(master_path)),
            ("write a calibrated light (data + UNCERT)", write_light),
            ("file_hash of that light just after", lambda: file_hash(light_path)),
        ]
        rows = [(label, best(fn, args.repeat)) for label, fn in rows]
        reader = HashingReader(master_path)
        with fits.open(reader, memmap=False) as hdul:
            for hdu in hdul:
                _ = hdu.data
        reader.close()
        sizes = {"master": master_path.stat().st_size, "light": light_path.stat().st_size}
    mib = {k: v / 2**20 for k, v in sizes.items()}
    print(
        f"Shape {shape[0]}x{shape[1]}: master {mib['master']:.1f} MiB, light "
        f"{mib['light']:.1f} MiB; best of {args.repeat}, files in the page cache.\n"
    )
    print("| step | best s | MiB/s |")
    print("|---|---:|---:|")
    for label, seconds in rows:
        size = mib["light"] if "light" in label else mib["master"]
        print(f"| {label} | {seconds:.3f} | {size / seconds:.0f} |")
    print(
        f"\n- Bytes the hashing reader read twice (FITS padding): {reader.tail} "
        f"({100 * reader.tail / sizes['master']:.3f}% of the master)."
    )
    print(
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the end."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
