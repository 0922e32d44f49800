"""Real frames from public repositories: what each set holds, extraction, layout, scores.

    export DARKFLOW_REAL_DATA=/work/shared/realdata       # default ~/.cache/darkflow/real
    .venv/bin/python benchmarks/realdata.py list          # the sets and what they hold
    .venv/bin/python benchmarks/realdata.py extract       # from fetched snapshots into the cache
    .venv/bin/python benchmarks/realdata.py verify        # sha256 of every file in the cache
    .venv/bin/python benchmarks/realdata.py headers       # the header keywords of every frame

Three public GitHub repositories hold real CCD frames (SBIG STL-1001E and ST-402 written by
CCDSoft, a QSI 583 written by TheSkyX). They state no licence, so their frames are never
committed here: :func:`extract_set` reads them from a fetched snapshot (a git directory, e.g.
``/work/.mirror/<owner>+<name>/repo`` made by the search tool's ``fetch github:<owner>/<name>``,
or any clone) with ``git show <commit>:<path>``, checks each blob's git id, and lays the frames out
in the cache the way a user would hand them to darkflow::

    <cache>/sets/<set>/input/<night or library>/<file>    # what darkflow, ccdproc, Siril get
    <cache>/sets/<set>/answer/<file>                      # answer keys, never an input
    <cache>/sets/<set>/manifest.json                      # every file: role, origin, sha256

A set is plain data (:data:`SETS`): every frame with its role, and for every light whether it has
darks of exactly its exposure and temperature (``exact_dark``), whether its true signal after bias
and dark removal is zero (``truth_zero``: a dark held out of the masters and given as a light, so
the calibrated frame must be pure noise), and its answer key (the capture program's own
dark-subtracted copy). Two kinds of frames are derived, deterministically, and say so in a
``HISTORY`` card: a held-out dark gets ``IMAGETYP='Light Frame'`` (header edited in place, data
bytes untouched), and an *implied dark* (``raw - calibrated + pedestal``) is rebuilt where a
capture program subtracted a dark it did not save. ``docs/real-data.md`` describes every set.

How a calibrated light is scored lives in ``realscores.py`` (plain-array functions shared by
``bench_real.py`` and the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from astropy.io import fits

from darkflow.io.atomic import write_bytes_atomic

ENV_CACHE = "DARKFLOW_REAL_DATA"
ENV_MIRRORS = "DARKFLOW_MIRRORS"
DEFAULT_CACHE = Path("~/.cache/darkflow/real")
DEFAULT_MIRRORS = (Path("/work/.mirror"), Path("~/.cache/darkflow/mirrors"))
MANIFEST = "manifest.json"
LAYOUT_VERSION = 1  # bump when a set's files or their derivation change


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """A public repository pinned at one commit."""

    repo: str  # owner/name on GitHub
    commit: str

    @property
    def fetch_hint(self) -> str:
        owner, name = self.repo.split("/")
        return (
            f"fetch github:{self.repo}  (the search tool; it makes /work/.mirror/{owner}+{name}/repo), "
            f"or: git clone https://github.com/{self.repo} && git -C {name} checkout {self.commit}; "
            f"then pass --mirrors DIR or set {ENV_MIRRORS}"
        )


SOURCES: dict[str, Source] = {
    "ast443": Source("CelestialGoonSquad/AST443", "e82f6bb465d6b08b9c0579e65e9bcfd264f9abc7"),
    "ylo0803": Source("ylo0803/ast443-nyc", "884e5f38bda942098d256f6cdac8d0a2181d7e4e"),
    "mdm": Source("RMcDOttawa/MasterDarkMaker", "18f426e263e671d64832f7677eb65172b00da108"),
}


class MissingSnapshot(RuntimeError):
    """The snapshot of a source is not on this machine (the message says which fetch to run)."""


def _git(git_dir: Path, *args: str, text: bool = False) -> bytes | str:
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False, text=text
    )
    if out.returncode != 0:
        err = out.stderr if text else out.stderr.decode(errors="replace")
        raise RuntimeError(f"git {' '.join(args)} in {git_dir}: {err.strip()}")
    return out.stdout


def mirror_roots(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Where snapshots are looked for: ``extra``, then ``$DARKFLOW_MIRRORS``, then the defaults."""
    env = [p for p in os.environ.get(ENV_MIRRORS, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in (*extra, *env, *DEFAULT_MIRRORS)]


def find_snapshot(source: Source, roots: Sequence[Path]) -> Path:
    """The git directory holding ``source.commit``, or :class:`MissingSnapshot` saying how to fetch."""
    owner, name = source.repo.split("/")
    for root in roots:
        for cand in (
            root / f"{owner}+{name}" / "repo" / ".git",
            root / f"{owner}+{name}" / "repo",
            root / f"{owner}+{name}",
            root / name / ".git",
            root / name,
            root,
        ):
            if not (cand / "objects").is_dir():
                continue
            try:
                _git(cand, "cat-file", "-e", f"{source.commit}^{{commit}}")
            except RuntimeError:
                continue
            return cand
    raise MissingSnapshot(
        f"no snapshot of {source.repo} at {source.commit[:12]} under "
        f"{', '.join(map(str, roots))}: {source.fetch_hint}"
    )


def tree_blobs(git_dir: Path, commit: str, prefix: str) -> dict[str, tuple[str, int | None]]:
    """``path -> (git blob id, size)`` under ``prefix`` at ``commit`` (size None: not fetched)."""
    out = _git(git_dir, "ls-tree", "-r", "-l", commit, "--", prefix, text=True)
    blobs = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        _mode, kind, blob, size = meta.split()
        if kind == "blob":
            blobs[path] = (blob, int(size) if size.isdigit() else None)
    return blobs


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes (sha1 of ``blob <size>\\0<data>``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- sets
class Role(StrEnum):
    BIAS = "bias"
    DARK = "dark"
    LIGHT = "light"
    FLAT = "flat"
    ANSWER = "answer"


@dataclass(frozen=True)
class Frame:
    """One file of a set: where it comes from, what it is, where it goes."""

    src: str  # path inside the source repository, relative to the set's prefix
    role: Role  # what the frame is in this set (what darkflow should take it for)
    folder: str  # sub folder of input/ (a night, or "library"); "" for answer/
    name: str = ""  # file name in the layout (default: the source's)
    relabel: str = ""  # new IMAGETYP: a held-out dark given as a light
    exact_dark: bool = False  # the set has darks of this light's exposure and temperature
    truth_zero: bool = False  # after bias and dark removal the true signal is zero
    answer: str = ""  # the file name in answer/ of this light's reference calibration
    precalibrated: bool = False  # the capture program already subtracted a dark (keep it out)
    no_dark_signal: bool = False  # holds no dark signal though no header says so (see docs)
    implied: tuple[str, str] = ()  # (raw src, calibrated src): dark = raw - calibrated + pedestal

    @property
    def file_name(self) -> str:
        return self.name or Path(self.src).name

    @property
    def rel_path(self) -> str:
        """Path of the file inside the set directory."""
        top = "answer" if self.role is Role.ANSWER else "input"
        return "/".join(p for p in (top, self.folder, self.file_name) if p)


@dataclass(frozen=True)
class RealSet:
    name: str
    source: str  # key of SOURCES
    prefix: str  # folder in the repository
    camera: str
    summary: str
    frames: tuple[Frame, ...]
    pedestal: float = 0.0  # pedestal of the answer keys (added by the capture program)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def by_role(self, role: Role) -> list[Frame]:
        return [f for f in self.frames if f.role is role]

    @property
    def lights(self) -> list[Frame]:
        return self.by_role(Role.LIGHT)


def _held_out(src: str, folder: str, **kw) -> Frame:
    return Frame(src, Role.LIGHT, folder, relabel="Light Frame", truth_zero=True, **kw)


def _ast443_stl() -> tuple[RealSet, RealSet]:
    n = "2017-09-08"
    biases = [Frame(f"bias-Neg10-Vis.{i:08d}.BIAS.FIT", Role.BIAS, n) for i in range(10)] + [
        Frame(f"biases-Neg5-Vis.{i:08d}.BIAS.FIT", Role.BIAS, n) for i in range(10)
    ]
    series60 = [f"darks-expos1-Neg5-Vis.{i:08d}.DARK.FIT" for i in range(10)]
    ladder = [
        (t, f"darks-expos{s}s-Neg{t}-Vis.00000000.DARK.FIT")
        for t in (5, 10)
        for s in (10, 20, 30, 60, 150, 300)
    ]
    flats = [
        Frame(f"flat-expos23s-Neg5-Vis.{i:08d}.FIT", Role.LIGHT, n, no_dark_signal=True)
        for i in range(10)
    ]  # IMAGETYP='Light Frame', yet dark-subtracted already: no hot pixel of the darks is in them
    as_given = RealSet(
        "ast443-stl1001e",
        "ast443",
        "CGS-GroupData/lab0/BigCCD/bigCCD-data",
        "SBIG STL-1001E, 1024x1024, CCDSoft 5, EGAIN 2.06",
        "one night as the students left it: 10+10 biases (-10/-5 C), 10 x 60 s darks at -5 C "
        "(named 'expos1'), one dark each of 10-300 s at -5 and -10 C, 10 x 23 s dome flats "
        "recorded as IMAGETYP='Light Frame' that hold no dark signal (dark-subtracted before "
        "they were saved, though no header says so; no 23 s dark either)",
        tuple(
            biases
            + [Frame(p, Role.DARK, n) for p in series60]
            + [Frame(p, Role.DARK, n) for _, p in ladder]
            + flats
        ),
        notes=(
            "file names lie: darks-expos1-* are 60 s (EXPTIME), not 1 s",
            "the 23 s flats are IMAGETYP='Light Frame' and hold no dark signal (no HISTORY)",
            "BIAS=100 and CBLACK/CWHITE (display levels) are CCDSoft keywords, not a pedestal",
            "CCD-TEMP quantised in 0.41 C steps (-4.82 / -5.23 around SET-TEMP -5)",
        ),
    )
    held_out = RealSet(
        "ast443-stl1001e-holdout",
        "ast443",
        as_given.prefix,
        as_given.camera,
        "the same night with known truth: masters from 20 biases and 8 of the 60 s darks at "
        "-5 C; the other 2 of them and every single dark of the 10-300 s ladders at -5 and "
        "-10 C are given as lights (true signal zero; exact darks only for the 60 s at -5 C)",
        tuple(
            biases
            + [Frame(p, Role.DARK, n) for p in series60[:8]]
            + [_held_out(p, n, exact_dark=True) for p in series60[8:]]
            + [_held_out(p, n, exact_dark=(t == 5 and "expos60s" in p)) for t, p in ladder]
        ),
        notes=as_given.notes[:1],
    )
    return as_given, held_out


def _ast443_st402() -> RealSet:
    lights, darks = "2017-10-17", "2017-10-18"  # noon-to-noon nights (UTC - 12 h)
    fr: list[Frame] = []
    for kind, exp, count in (("hg", 240, 5), ("neon", 1200, 5)):
        fr += [Frame(f"L2-dark-{kind}-{exp}.{i:08d}.DARK.FIT", Role.DARK, darks) for i in range(5)]
        fr += [
            Frame(f"L2-sci-{kind}-{exp}.{i:08d}.FIT", Role.LIGHT, lights, exact_dark=True)
            for i in range(count)
        ]
    fr += [Frame(f"L2-dark-flat-360.{i:08d}.DARK.FIT", Role.DARK, darks) for i in range(5)]
    fr += [
        Frame(f"L2-flat-hg-360.{i:08d}.FIT", Role.LIGHT, lights, exact_dark=True) for i in range(4)
    ]
    fr += [
        Frame(f"L2-flat-red-180.{i:08d}.FIT", Role.LIGHT, lights, no_dark_signal=True)
        for i in range(1, 5)
    ]  # no HISTORY, but no dark signal either: dark-subtracted like the first one of the series
    fr += [
        Frame(
            "L2-flat-red-180.00000000.FIT",
            Role.LIGHT,
            lights,
            precalibrated=True,
            no_dark_signal=True,
        )
    ]
    fr += [
        Frame(p, Role.LIGHT, lights, precalibrated=True)
        for p in (
            "L2-star-hg-10.00000000.FIT",
            "L2-star-neon-40.00000000.FIT",
            "L2-arc-hg-10.00000000.FIT",
            "L2-arc-neon.00000000.FIT",
        )
    ]  # HISTORY 'Auto-Dark Subtraction': CCDSoft subtracted a dark it did not save
    return RealSet(
        "ast443-st402-spectra",
        "ast443",
        "CGS-GroupData/lab2/usedata",
        "SBIG ST-402, binned 1x2 (765x255), -15 C, CCDSoft 5, EGAIN 1.49",
        "long-slit spectra over two nights, no bias: lights (Hg 240 s, Ne 1200 s science, Hg 360 s "
        "and red 180 s flats, 10/40 s star and 10/60 s arc frames) on 2017-10-17, darks of 240, "
        "360 and 1200 s (5 each) on the next night; 14 lights have exact darks; the 5 red flats "
        "of 180 s hold no dark signal (one says HISTORY 'Auto-Dark Subtraction', the others "
        "nothing); both star and both arc frames say 'Auto-Dark Subtraction' too",
        tuple(fr),
        notes=(
            "no bias frames: exposure scaling needs a per-pixel two-point (intercept, rate) model",
            "5 lights are CCDSoft auto-dark-subtracted (no raw kept): they must not be calibrated",
            "4 more (red flats) hold no dark signal without a header saying so",
            "darks taken the night after the lights (the set is a two-night tree)",
            "flats and arcs are IMAGETYP='Light Frame'; spectra have no stars",
            "YBINNING=2, XBINNING=1 (non-square binning)",
        ),
    )


def _ylo_stl() -> RealSet:
    n = "2019-09-06"
    series = [f"dark_10series_0c_0m30s.{i:08d}.DARK.FIT" for i in range(1, 11)]
    ladder = [
        "dark_series_0c_10s.00000001.DARK.FIT",
        "dark_series_0c_1m.00000002.DARK.FIT",
        "dark_series_0c_1m30s.00000001.DARK.FIT",
        "dark_series_0c_2m.00000001.DARK.FIT",
        "dark_series_0c_2m30s.00000001.DARK.FIT",
        "dark_series_0c_3m.00000001.DARK.FIT",
        "dark_series_0c_3m30s.00000001.DARK.FIT",
        "dark_series_0c_4m.00000001.DARK.FIT",
        "dark_series_0c_4m30s.00000001.DARK.FIT",
        "dark_series_0c_5m.00000002.DARK.FIT",
    ]
    return RealSet(
        "ylo-stl1001e-holdout",
        "ylo0803",
        "lab0/data",
        "SBIG STL-1001E, 1024x1024, CCDSoft 5, EGAIN 2.06",
        "dark ladder with known truth: masters from 10 biases at 0 C and 8 of 10 x 30 s darks at "
        "0 C; the other 2, the single darks of 10-300 s at 0 C and the 300 s dark at +10 C (one "
        "+10 C bias) are given as lights (true signal zero; exact darks only for the 30 s)",
        tuple(
            [Frame(f"bias_series_0c.{i:08d}.BIAS.FIT", Role.BIAS, n) for i in range(1, 11)]
            + [Frame("bias_1series_10c_0s.00000001.BIAS.FIT", Role.BIAS, n)]
            + [Frame(p, Role.DARK, n) for p in series[:8]]
            + [_held_out(p, n, exact_dark=True) for p in series[8:]]
            + [_held_out(p, n) for p in ladder]
            + [_held_out("dark_1series_10c_5m.00000001.DARK.FIT", n)]
        ),
        notes=(
            "a single bias at +10 C: its master is one frame",
            "the 300 s dark at +10 C has 16x the 0 C dark current of a 20 s dark: a hard "
            "temperature extrapolation from 0 C masters",
        ),
    )


def _ylo_st402() -> RealSet:
    n, earlier = "2019-09-06", "2019-08-29"
    fr: list[Frame] = []
    for exp in ("1s", "5s"):
        raw = f"spec_neon_1series_{exp}.00000001.NOAUTODARK.FIT"
        auto = f"spec_neon_1series_{exp}.00000001.FIT"
        fr.append(Frame(raw, Role.LIGHT, n, exact_dark=True, answer=auto))
        fr.append(Frame(auto, Role.ANSWER, ""))
        fr.append(Frame("", Role.DARK, n, name=f"implied_dark_{exp}.DARK.FIT", implied=(raw, auto)))
    fr.append(Frame("flat_spec_1series_10s.00000001.FLAT.FIT", Role.FLAT, n))
    fr += [Frame(p, Role.LIGHT, earlier) for p in ("spec_flat_field.FIT", "spec_lamp.FIT")]
    return RealSet(
        "ylo-st402-autodark",
        "ylo0803",
        "lab0/data",
        "SBIG ST-402, 765x510, -5 C, CCDSoft 5, EGAIN 2.3",
        "neon spectra of 1 s and 5 s kept raw (NOAUTODARK) beside CCDSoft's auto-dark-subtracted "
        "copies (same DATE-OBS, pedestal 100: the answer key); the dark CCDSoft took is not in "
        "the repository, so each is rebuilt as raw - copy + 100 (exact: no copy pixel is clipped "
        "at 0); 2 lights of 2019-08-29 at 0 C have no dark at all",
        tuple(fr),
        pedestal=100.0,
        notes=(
            "circular by construction: each light's only dark is rebuilt from its own answer key, "
            "so the key checks arithmetic (pedestal, BZERO, scaling choice), not noise",
            "the copies say HISTORY 'Auto-Dark Subtraction' and CBLACK=0",
            "the 5 s raw light saturates (65535) in the brightest lines",
        ),
    )


def _mdm_qsi() -> RealSet:
    n = "2020-04-17"
    lib = "Videos/MasterDarkMaker Video Stage/04 Calibration Bias Files/Bias Library"
    darks = {
        2: [
            "-9.00C00003219",
            "-8.20C00003222",
            "-7.00C00003216",
            "-7.00C00003225",
            "-7.00C00003228",
            "-7.00C00003231",
            "-7.00C00003234",
            "-7.00C00003237",
            "-7.00C00003240",
            "-7.00C00003243",
        ],
        3: [
            "-8.70C00003220",
            "-7.80C00003223",
            "-5.30C00003217",
            "-7.00C00003226",
            "-7.00C00003229",
            "-7.00C00003232",
            "-7.00C00003235",
            "-7.00C00003238",
            "-7.00C00003241",
            "-7.00C00003244",
        ],
    }
    fr: list[Frame] = []
    for b, tags in darks.items():
        paths = [f"Darks Near -5/DARK_{b}x{b}_5.000secs_{t}.fit" for t in tags]
        fr += [Frame(p, Role.DARK, n) for p in paths[:-1]]
        fr.append(_held_out(paths[-1], n, exact_dark=True))
    for temp in ("-1.0C", "-10.0C", "-16.0C", "5.0C"):
        for b in (2, 3):
            name = f"BIAS-SigmaClip2.0-20200518-1003-0.000s-{temp}-{b}x{b}.fit"
            fr.append(Frame(f"{lib}/{name}", Role.BIAS, "library"))
    return RealSet(
        "mdm-qsi583",
        "mdm",
        "",
        "QSI 583ws, binned 2x2 (1663x1252) and 3x3 (1108x834), TheSkyX 10.5, EGAIN='High'",
        "5 s darks binned 2x2 and 3x3 (10 each, SET-TEMP -7 C, the first ones still cooling: "
        "CCD-TEMP -9 to -5.3 C) and MasterDarkMaker's master biases at -16/-10/-1/+5 C made a "
        "month later; the last dark of each binning is given as a light (true signal zero)",
        tuple(fr),
        notes=(
            "EGAIN='High' is the camera's gain *setting* as a string, not e-/ADU",
            "the master biases are int16 without BZERO, without DATE-OBS or INSTRUME; "
            "1x1 frames are absent from the snapshot (files >= 4 MiB are not stored)",
            "darks are afternoon frames (LOCALTIM 3:32 PM DST); site longitude in OBSGEO-L",
        ),
    )


def _all_sets() -> dict[str, RealSet]:
    sets = [*_ast443_stl(), _ast443_st402(), _ylo_stl(), _ylo_st402(), _mdm_qsi()]
    return {s.name: s for s in sets}


SETS: dict[str, RealSet] = _all_sets()


# ----------------------------------------------------------------------------- derived frames
def _card(key: str, value: str) -> bytes:
    quoted = "'" + value.replace("'", "''").ljust(8) + "'"
    return f"{key:<8}= {quoted:<20}".ljust(80).encode("ascii")


def _history(text: str) -> bytes:
    return f"HISTORY {text}".ljust(80)[:80].encode("ascii")


def header_end(blob: bytes) -> int:
    """Byte offset of the END card of the primary header."""
    for i in range(0, len(blob) - 79, 80):
        if blob[i : i + 8] == b"END     ":
            return i
    raise ValueError("no END card in the primary header")


def data_offset(blob: bytes) -> int:
    return -(-(header_end(blob) + 80) // 2880) * 2880


def edit_header(blob: bytes, values: dict[str, str], history: Iterable[str] = ()) -> bytes:
    """The file with string cards replaced (or added) and HISTORY cards appended.

    Cards are edited as bytes so every other card and the data unit stay byte-identical.
    """
    end = header_end(blob)
    cards = [blob[i : i + 80] for i in range(0, end, 80)]
    todo = dict(values)
    for i, card in enumerate(cards):
        key = card[:8].decode("ascii").strip()
        if key in todo and card[8:10] == b"= ":
            cards[i] = _card(key, todo.pop(key))
    cards += [_card(k, v) for k, v in todo.items()]
    cards += [_history(h) for h in history]
    header = b"".join(cards) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    return header + blob[data_offset(blob) :]


def implied_dark(raw: bytes, calibrated: bytes, pedestal: float) -> bytes:
    """``raw - calibrated + pedestal`` as a 16-bit dark with the raw frame's header.

    Exact where the capture program's copy is not clipped (``calibrated > 0``); raises when it
    is, since the dark is then unknown there.
    """
    with fits.open(io.BytesIO(raw)) as r, fits.open(io.BytesIO(calibrated)) as c:
        a = r[0].data.astype(np.int64)
        b = c[0].data.astype(np.int64)
    if a.shape != b.shape:
        raise ValueError(f"raw {a.shape} and calibrated {b.shape} differ in shape")
    if (b <= 0).any():
        raise ValueError(f"{int((b <= 0).sum())} pixels clipped at 0 in the calibrated copy")
    dark = a - b + int(pedestal)
    if dark.min() < 0 or dark.max() > 65535:
        raise ValueError("implied dark outside 0..65535")
    head = edit_header(
        raw[: data_offset(raw)],
        {"IMAGETYP": "Dark Frame"},
        [
            "realdata: implied dark = raw - auto-dark copy + 100, rebuilt from the",
            "realdata: raw frame (this header) and the capture program's copy",
        ],
    )
    body = (dark - 32768).astype(">i2").tobytes()
    return head + body + b"\0" * (-len(body) % 2880)


# ----------------------------------------------------------------------------- extraction
def cache_root(cache: str | Path | None = None) -> Path:
    """``cache``, else ``$DARKFLOW_REAL_DATA``, else ``~/.cache/darkflow/real``."""
    return Path(cache or os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser()


def set_dir(rs: RealSet | str, cache: str | Path | None = None) -> Path:
    name = rs if isinstance(rs, str) else rs.name
    return cache_root(cache) / "sets" / name


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)


def extract_set(
    rs: RealSet, git_dir: Path, cache: str | Path | None = None, *, source: Source | None = None
) -> Path:
    """Write the set's layout and manifest into the cache; return the set directory.

    Every source blob is checked against its git id at the pinned commit; the manifest records
    the sha256 of every file written (and of a derived file's parents). ``source`` defaults to
    ``SOURCES[rs.source]``.
    """
    source = source or SOURCES[rs.source]
    root = set_dir(rs, cache)
    prefix = f"{rs.prefix}/" if rs.prefix else ""
    blobs = tree_blobs(git_dir, source.commit, rs.prefix or ".")

    def read(rel: str) -> tuple[bytes, str]:
        path = prefix + rel
        if path not in blobs:
            raise FileNotFoundError(f"{path} is not in {source.repo}@{source.commit[:12]}")
        blob, size = blobs[path]
        if size is None:
            raise MissingSnapshot(f"{path} is not stored in the snapshot (large file)")
        data = _git(git_dir, "show", f"{source.commit}:{path}")
        if git_blob_id(data) != blob:
            raise ValueError(f"{path}: content does not match its git blob {blob}")
        return data, blob

    # a partial or older layout must not survive: the manifest goes first, so an interrupted
    # extraction reads as "not extracted"
    (root / MANIFEST).unlink(missing_ok=True)
    for sub in ("input", "answer"):
        shutil.rmtree(root / sub, ignore_errors=True)
    entries = []
    for f in rs.frames:
        entry: dict[str, object] = {
            "path": f.rel_path,
            "role": str(f.role),
            "exact_dark": f.exact_dark,
            "truth_zero": f.truth_zero,
            "precalibrated": f.precalibrated,
            "no_dark_signal": f.no_dark_signal,
            "answer": f"answer/{f.answer}" if f.answer else "",
        }
        if f.implied:
            (raw, raw_blob), (cal, cal_blob) = read(f.implied[0]), read(f.implied[1])
            data = implied_dark(raw, cal, rs.pedestal)
            entry["derived"] = "implied_dark"
            entry["parents"] = [
                {"src": prefix + p, "blob": b, "sha256": sha256(d)}
                for p, b, d in ((f.implied[0], raw_blob, raw), (f.implied[1], cal_blob, cal))
            ]
        else:
            data, blob = read(f.src)
            entry.update(src=prefix + f.src, blob=blob, src_sha256=sha256(data))
            if f.relabel:
                data = edit_header(
                    data,
                    {"IMAGETYP": f.relabel},
                    ["realdata: held-out dark given as a light; IMAGETYP was 'Dark Frame'"],
                )
                entry["derived"] = "relabel"
        entry["sha256"] = sha256(data)
        entry["size"] = len(data)
        _write(root / f.rel_path, data)
        entries.append(entry)
    manifest = {
        "set": rs.name,
        "layout_version": LAYOUT_VERSION,
        "repo": source.repo,
        "commit": source.commit,
        "files": entries,
    }
    _write(root / MANIFEST, json.dumps(manifest, indent=1).encode())
    return root


def load_manifest(rs: RealSet | str, cache: str | Path | None = None) -> dict | None:
    path = set_dir(rs, cache) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def verify_set(rs: RealSet, cache: str | Path | None = None) -> list[str]:
    """Problems with the set in the cache (empty: every file is there with its sha256)."""
    manifest = load_manifest(rs, cache)
    if manifest is None:
        return [f"{rs.name}: not extracted (no {MANIFEST})"]
    problems = []
    if manifest.get("layout_version") != LAYOUT_VERSION:
        problems.append(f"{rs.name}: layout version {manifest.get('layout_version')}")
    expected = {f.rel_path for f in rs.frames}
    listed = {e["path"] for e in manifest["files"]}
    if expected != listed:
        problems.append(f"{rs.name}: manifest lists other files than the set describes")
    root = set_dir(rs, cache)
    for e in manifest["files"]:
        path = root / e["path"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        data = path.read_bytes()
        if sha256(data) != e["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
        elif "derived" not in e and git_blob_id(data) != e["blob"]:
            problems.append(f"{path}: not the git blob {e['blob']}")
    on_disk = {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST
    }
    problems += [f"{root / p}: not part of the set" for p in sorted(on_disk - listed)]
    return problems


def ensure_set(
    rs: RealSet, cache: str | Path | None = None, mirrors: Sequence[str | Path] = ()
) -> Path:
    """The set directory, extracted now if absent or damaged (MissingSnapshot if it cannot be)."""
    if not verify_set(rs, cache):
        return set_dir(rs, cache)
    git_dir = find_snapshot(SOURCES[rs.source], mirror_roots(mirrors))
    return extract_set(rs, git_dir, cache)


@dataclass(frozen=True)
class LightCase:
    """A light of an extracted set with its expectations, as the benchmark scores it."""

    path: Path
    exact_dark: bool
    truth_zero: bool
    answer: Path | None
    precalibrated: bool = False
    no_dark_signal: bool = False


def light_cases(rs: RealSet, cache: str | Path | None = None) -> list[LightCase]:
    root = set_dir(rs, cache)
    return [
        LightCase(
            root / f.rel_path,
            f.exact_dark,
            f.truth_zero,
            root / "answer" / f.answer if f.answer else None,
            f.precalibrated,
            f.no_dark_signal,
        )
        for f in rs.lights
    ]


def input_files(
    rs: RealSet, cache: str | Path | None = None, role: Role | None = None
) -> list[Path]:
    root = set_dir(rs, cache)
    return [
        root / f.rel_path
        for f in rs.frames
        if f.role is not Role.ANSWER and (role is None or f.role is role)
    ]


# ----------------------------------------------------------------------------- CLI
HEADER_KEYS = (
    "IMAGETYP",
    "EXPTIME",
    "CCD-TEMP",
    "SET-TEMP",
    "DATE-OBS",
    "EGAIN",
    "XBINNING",
    "YBINNING",
    "NAXIS1",
    "NAXIS2",
    "BZERO",
    "INSTRUME",
)


def header_table(rs: RealSet, cache: str | Path | None = None) -> list[dict[str, object]]:
    rows = []
    for f in rs.frames:
        h = fits.getheader(set_dir(rs, cache) / f.rel_path)
        rows.append(
            {"file": f.rel_path, "role": str(f.role), **{k: h.get(k, "") for k in HEADER_KEYS}}
        )
    return rows


def _selected(names: Sequence[str]) -> list[RealSet]:
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise SystemExit(f"unknown set(s) {unknown}; known: {', '.join(SETS)}")
    return [SETS[n] for n in names] if names else list(SETS.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("list", "extract", "verify", "headers"))
    parser.add_argument("--sets", nargs="*", default=[], help="set names (default: all)")
    parser.add_argument(
        "--cache", help=f"cache directory (default ${ENV_CACHE} or {DEFAULT_CACHE})"
    )
    parser.add_argument("--mirrors", nargs="*", default=[], help="where fetched snapshots are")
    args = parser.parse_args(argv)
    sets = _selected(args.sets)
    status = 0
    for rs in sets:
        if args.command == "list":
            lights = rs.lights
            print(f"{rs.name}  [{SOURCES[rs.source].repo}]  {rs.camera}")
            print(f"  {rs.summary}")
            print(
                f"  {len(rs.by_role(Role.BIAS))} biases, {len(rs.by_role(Role.DARK))} darks, "
                f"{len(lights)} lights ({sum(f.exact_dark for f in lights)} with exact darks, "
                f"{sum(f.truth_zero for f in lights)} of zero truth, "
                f"{sum(bool(f.answer) for f in lights)} with an answer key)"
            )
        elif args.command == "extract":
            try:
                git_dir = find_snapshot(SOURCES[rs.source], mirror_roots(args.mirrors))
            except MissingSnapshot as err:
                print(f"{rs.name}: skipped: {err}")
                status = 1
                continue
            root = extract_set(rs, git_dir, args.cache)
            print(f"{rs.name}: {len(rs.frames)} files -> {root}")
        elif args.command == "verify":
            problems = verify_set(rs, args.cache)
            print(f"{rs.name}: " + ("ok" if not problems else "\n  ".join(["PROBLEMS", *problems])))
            status |= bool(problems)
        else:
            rows = header_table(rs, args.cache)
            print(f"## {rs.name}")
            print("\t".join(["file", "role", *HEADER_KEYS]))
            for r in rows:
                print("\t".join(str(v) for v in r.values()))
    return status


if __name__ == "__main__":
    sys.exit(main())
