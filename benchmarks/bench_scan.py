"""Benchmark: darkflow's header scan vs ``ccdproc.ImageFileCollection`` on the same folder.

Generates N (default 5,000) small FITS files (64x64 uint16) with realistic headers in the
styles of several capture programs (N.I.N.A., SGP, MaxIm DL, SharpCap, ASIAIR, INDI/Ekos) into
``benchmarks/data/scan/`` (git-ignored; reused when already complete), then times, in one run:

* ``darkflow.ingest.catalog.scan(folder)`` (fast header reader + normalisation + duplicates + nights);
* ``ccdproc.ImageFileCollection(folder)`` (default: all keywords of every header);

each ``--repeat`` times (files are in the page cache for both), and prints a markdown table of
the best and median times, files per second and the ratio. ``--write`` puts the table in
``benchmarks/RESULTS.md`` under the "Ingestion scan" section (other sections untouched).

Run: ``.venv/bin/python benchmarks/bench_scan.py [--files 5000] [--repeat 3] [--write]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "scan"
RESULTS = ROOT / "RESULTS.md"
SECTION = "## Ingestion scan (`benchmarks/bench_scan.py`)"
BLOCK = 2880
SHAPE = (64, 64)


def _program_cards(kind: str, i: int, t: datetime, rng: np.random.Generator) -> list[tuple]:
    """(keyword, value, comment) cards in one program's style."""
    iso7 = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
    iso3 = t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    temp = round(-10.0 + rng.normal(0, 0.2), 2)
    frame = ["LIGHT", "DARK", "FLAT", "BIAS"][i % 4]
    if kind == "nina":
        return [
            ("IMAGETYP", frame, "Type of exposure"),
            ("EXPOSURE", 120.0, "[s] Exposure duration"),
            ("EXPTIME", 120.0, "[s] Exposure duration"),
            ("DATE-LOC", (t + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], ""),
            ("DATE-OBS", iso3, "Time of observation (UTC)"),
            ("XBINNING", 1, "X axis binning factor"),
            ("YBINNING", 1, "Y axis binning factor"),
            ("GAIN", 100, "Sensor gain"),
            ("OFFSET", 50, "Sensor gain offset"),
            ("EGAIN", 0.777, "[e-/ADU] Electrons per A/D unit"),
            ("XPIXSZ", 3.76, "[um] Pixel X axis size"),
            ("YPIXSZ", 3.76, "[um] Pixel Y axis size"),
            ("INSTRUME", "ZWO ASI2600MM Pro", "Imaging instrument name"),
            ("SET-TEMP", -10.0, "[degC] CCD temperature setpoint"),
            ("CCD-TEMP", temp, "[degC] CCD temperature"),
            ("READOUTM", "Normal", "Sensor readout mode"),
            ("USBLIMIT", 40, "Camera-specific USB setting"),
            ("TELESCOP", "Esprit 100", "Name of telescope"),
            ("FOCALLEN", 550.0, "[mm] Focal length"),
            ("SITELAT", 48.2, "[deg] Observation site latitude"),
            ("SITELONG", 16.4, "[deg] Observation site longitude"),
            ("FILTER", "Ha", "Active filter name"),
            ("OBJECT", "NGC 2244", "Name of the object of interest"),
            ("RA", 97.98, "[deg] RA of telescope"),
            ("DEC", 4.94, "[deg] Declination of telescope"),
            ("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
            ("EQUINOX", 2000.0, "Equinox of celestial coordinate system"),
            ("SWCREATE", "N.I.N.A. 3.0.0.9001", "Software that created this file"),
        ]
    if kind == "sgp":
        return [
            ("OBJECT", "M57", "Object name"),
            ("DATE-LOC", (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", ""),
            ("DATE-OBS", iso7, "UTC observation date"),
            ("IMAGETYP", frame, "Type of frame"),
            ("CREATOR", "Sequence Generator Pro v4.2.0.1071", "Capture software"),
            ("INSTRUME", "ZWO ASI294MC Pro", "Instrument name"),
            ("SITELAT", "51 3 0.000", "Latitude of the imaging site in degrees"),
            ("SITELONG", "3 43 0.000", "Longitude of the imaging site in degrees"),
            ("FOCUSER", "ASCOM Driver for SestoSenso", "Focuser name"),
            ("FOCPOS", 827840, "Absolute focuser position"),
            ("EXPOSURE", 300, "Exposure time in seconds"),
            ("CCD-TEMP", temp, "Camera cooler temperature"),
            ("SET-TEMP", -10, "Camera cooler target temperature"),
            ("XBINNING", 1, "Camera X Bin"),
            ("CCDXBIN", 1, "Camera X Bin"),
            ("YBINNING", 1, "Camera Y Bin"),
            ("CCDYBIN", 1, "Camera Y Bin"),
            ("GAIN", 120, "Camera gain"),
            ("EGAIN", 3.99000000953674, "Electrons Per ADU"),
            ("OFFSET", 30, "Camera offset"),
        ]
    if kind == "maxim":
        typ = {"LIGHT": "Light Frame", "DARK": "Dark Frame", "FLAT": "Flat Frame"}
        return [
            ("DATE-OBS", t.strftime("%Y-%m-%dT%H:%M:%S"), "UTC date/time of exposure start"),
            ("EXPTIME", "3.00000000000E+002", "[sec] Duration of exposure"),
            ("EXPOSURE", "3.00000000000E+002", "[sec] Duration of exposure"),
            ("SET-TEMP", -35.0, "CCD temperature setpoint in C"),
            ("CCD-TEMP", temp - 25, "CCD temperature at start of exposure in C"),
            ("XPIXSZ", 5.4, "Pixel Width in microns (after binning)"),
            ("XBINNING", 1, "Binning level along the X-axis"),
            ("YBINNING", 1, "Binning level along the Y-axis"),
            ("READOUTM", "Monochrome", "Readout mode of image"),
            ("IMAGETYP", typ.get(frame, "Bias Frame"), "Type of image"),
            ("SITELONG", "149 03 52", "Longitude of the imaging location"),
            ("JD", 2460496.08545, "Julian Date at start of exposure"),
            ("SWCREATE", "MaxIm DL Version 6.40 230510 26WKQ", "Name of software"),
            ("SBSTDVER", "SBFITSEXT Version 1.0", "Version of SBFITSEXT standard in effect"),
            ("INSTRUME", "SBIG STF-8300M", "Detector instrument name"),
            ("EGAIN", 0.37, "Electronic gain in photoelectrons per ADU"),
        ]
    if kind == "sharpcap":
        return [
            ("GAIN", 300, ""),
            ("OFFSET", 8, ""),
            ("BLKLEVEL", 8, ""),
            ("CAMID", "112E900511080900", ""),
            ("SET-TEMP", 0, ""),
            ("EGAIN", 0.1226, "Electrons per ADU at true ADC bit depth"),
            ("ADCBITS", 12, "Bit depth of camera sensor ADC in current mode"),
            ("EGAINSAV", 0.00766, "Electrons per ADU at saved bit depth"),
            ("ROWORDER", "TOP-DOWN", ""),
            ("EXPTIME", 280, "seconds"),
            ("XBINNING", 1, ""),
            ("YBINNING", 1, ""),
            ("CCD-TEMP", temp + 10, "C"),
            ("SWCREATE", "SharpCap v4.1.12946.0, 64 bit", ""),
            ("DATE-OBS", iso7, "System Clock:Est. Frame Start"),
            ("INSTRUME", "ZWO ASI183MM Pro", ""),
        ]
    if kind == "asiair":
        return [
            ("CREATOR", "ZWO ASIAIR Plus", "Capture software"),
            ("XBINNING", 1, "Camera X Bin"),
            ("YBINNING", 1, "Camera Y Bin"),
            ("CCDXBIN", 1, "Camera X Bin"),
            ("CCDYBIN", 1, "Camera Y Bin"),
            ("IMAGETYP", frame.title(), "Type of image"),
            ("EXPOSURE", 300.0, "Exposure time in seconds"),
            ("EXPTIME", 300.0, "Exposure time in seconds"),
            ("CCD-TEMP", temp, "sensor temperature in C"),
            ("SET-TEMP", -10.0, "Camera cooler target temperature"),
            ("SITELONG", -111.65, "longitude of the imaging site in degrees"),
            ("DATE-OBS", t.strftime("%Y-%m-%dT%H:%M:%S.%f"), "Image created time"),
            ("FILTER", "Ha", "Filter used when taking image"),
            ("INSTRUME", "ZWO ASI2600MC Pro", "Camera model"),
            ("BAYERPAT", "RGGB", "Bayer pattern"),
            ("GAIN", 100, "Gain Value"),
            ("OFFSET", 50, "Offset Value"),
        ]
    # INDI / Ekos
    return [
        ("ROWORDER", "TOP-DOWN", "Row Order"),
        ("INSTRUME", "ZWO CCD ASI294MM Pro", "CCD Name"),
        ("EXPTIME", 120.0, "Total Exposure Time (s)"),
        ("CCD-TEMP", temp, "CCD Temperature (Celsius)"),
        ("PIXSIZE1", 4.63, "Pixel Size 1 (microns)"),
        ("XBINNING", 1, "Binning factor in width"),
        ("YBINNING", 1, "Binning factor in height"),
        ("FRAME", frame.title(), "Frame Type"),
        ("IMAGETYP", f"{frame.title()} Frame", "Frame Type"),
        ("GAIN", 120, "Gain"),
        ("OFFSET", 30, "Offset"),
        ("DATE-OBS", iso3, "UTC start date of observation"),
        ("COMMENT", "Generated by INDI", None),
    ]


KINDS = ("nina", "sgp", "maxim", "sharpcap", "asiair", "indi")


def generate(folder: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` files (flat folder: ImageFileCollection does not recurse)."""
    from astropy.io import fits

    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == f"{n} {seed} v1":
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.fits"):
        old.unlink()
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 3, 2, 20, 0, tzinfo=UTC)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        t = t0 + timedelta(seconds=150 * i)
        header = fits.Header()
        header["SIMPLE"] = True
        header["BITPIX"] = 16
        header["NAXIS"] = 2
        header["NAXIS1"] = SHAPE[1]
        header["NAXIS2"] = SHAPE[0]
        header["BZERO"] = 32768
        header["BSCALE"] = 1
        for key, value, comment in _program_cards(kind, i, t, rng):
            if key == "COMMENT":
                header.add_comment(value)
            else:
                header[key] = (value, comment)
        text = header.tostring(padding=True).encode("ascii")
        data = rng.integers(0, 4000, size=SHAPE, dtype=np.uint16)
        body = (data.astype(np.int32) - 32768).astype(">i2").tobytes()
        body += b"\0" * (-len(body) % BLOCK)
        (folder / f"{kind}_{i:05d}.fits").write_bytes(text + body)
    stamp.write_text(f"{n} {seed} v1")


def _time(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def run(n: int, repeat: int, workers: int | None) -> tuple[str, dict]:
    sys.path.insert(0, str(ROOT.parent))
    from ccdproc import ImageFileCollection

    from darkflow.ingest.catalog import scan

    generate(DATA, n)
    folder = str(DATA)
    files = sorted(DATA.glob("*.fits"))
    # warm the page cache for both tools alike
    for f in files:
        f.read_bytes()

    def darkflow_scan():
        df = scan(folder, workers=workers)
        assert len(df) == n, len(df)

    def ccdproc_scan():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coll = ImageFileCollection(folder)
            assert len(coll.summary) == n

    t_df = _time(darkflow_scan, repeat)
    t_cc = _time(ccdproc_scan, repeat)
    best_df, best_cc = min(t_df), min(t_cc)
    med_df, med_cc = statistics.median(t_df), statistics.median(t_cc)
    load = os.getloadavg()
    info = {
        "files": n,
        "darkflow_best": best_df,
        "ccdproc_best": best_cc,
        "ratio_best": best_cc / best_df,
        "ratio_median": med_cc / med_df,
    }
    lines = [
        f"{n:,} files of 64x64 uint16 with headers from {len(KINDS)} programs "
        f"({', '.join(KINDS)}); best and median of {repeat} runs, files in the page cache.",
        "",
        "| tool | best (s) | median (s) | files/s (best) |",
        "|---|---:|---:|---:|",
        f"| darkflow `scan` (workers={workers or '1, default'}) | {best_df:.2f} | {med_df:.2f} "
        f"| {n / best_df:,.0f} |",
        f"| ccdproc `ImageFileCollection` | {best_cc:.2f} | {med_cc:.2f} | {n / best_cc:,.0f} |",
        f"| **ratio (ccdproc / darkflow)** | **{best_cc / best_df:.1f}x** "
        f"| {med_cc / med_df:.1f}x | |",
        "",
        "darkflow's time includes header normalisation, eligibility, duplicate detection and "
        "nights/sessions (the full catalog DataFrame); ccdproc's builds its summary table of "
        "all keywords (default `keywords='*'`).",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (shared machine).",
    ]
    return "\n".join(lines) + "\n", info


def write_results(table: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving others alone."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{SECTION}\n\n{table}"
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + block + ("\n" + text[end:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    sys.path.insert(0, str(ROOT.parent))
    from darkflow.io import write_bytes_atomic

    write_bytes_atomic(RESULTS, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    table, _ = run(args.files, args.repeat, args.workers)
    print(table)
    if args.write:
        write_results(table)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
