"""The command line as a new user meets it: one parser, global flags anywhere, one-line errors
with exit status 2, no silent mixing in `combine`, the configuration printed, quiet pipes."""

import io
import shutil
import tomllib
from pathlib import Path

import pytest

from darkflow.cli import build_parser, main
from darkflow.config import Config

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:  # argparse errors and --help
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def nina_darks(tiny_night) -> list[Path]:
    """Six darks of one camera: three at set-point -10 °C, three at -20 °C."""
    darks = sorted(tiny_night.glob("*/nina_asi2600mm/Calibration/DARK/*.fits"))
    assert len(darks) == 6
    return darks


# ----------------------------------------------------------------------------- errors, exit 2
def test_workdir_that_is_a_file(capsys, tiny_night, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for cmd in ("run", "plan", "nightly"):
        code, _, err = run_cli(capsys, cmd, tiny_night, "--workdir", afile)
        assert code == 2, cmd
        one_line_error(err, f"darkflow {cmd}: error:", "is a file, not a directory")


def test_scan_of_a_missing_path(capsys, tmp_path):
    code, out, err = run_cli(capsys, "scan", tmp_path / "nonexistent")
    assert code == 2 and out == ""
    one_line_error(err, "does not exist")


def test_run_of_a_file_that_is_not_a_frame(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("observing log\n")
    code, _, err = run_cli(capsys, "run", notes, "--workdir", tmp_path / "w")
    assert code == 2
    one_line_error(err, "neither a FITS frame nor a folder")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("cmd", ["status", "quarantine", "verify", "report"])
def test_workdir_commands_on_a_file(capsys, tmp_path, cmd):
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, cmd, afile)
    assert code == 2
    one_line_error(err, "is a file, not a directory")
    assert "--workdir" not in err


@pytest.mark.integration
def test_report_of_an_unknown_session(capsys, tiny_run, tmp_path):
    code, _out, err = run_cli(
        capsys, "report", tiny_run[0], "--session", "nosuch", "-o", tmp_path / "r"
    )
    assert code == 2
    one_line_error(err, "no session 'nosuch'", "zwo-asi2600mm-pro")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["run", "IN", "-w", "W", "--workers", "0"],
        ["nightly", "IN", "-w", "W", "--workers", "-1"],
        ["nightly", "IN", "-w", "W", "--report-workers", "0"],
        ["report", "W", "--workers", "0"],
        ["run", "IN", "-w", "W", "--dask-timeout", "0"],
    ],
)
def test_counts_below_one_are_refused(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    one_line_error(err, "error: argument")


# ----------------------------------------------------------------------------- global flags
@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "run", "IN", "-w", "W"],
        ["run", "IN", "-w", "W", "-v"],
        ["run", "-v", "IN", "-w", "W"],
        ["-q", "nightly", "IN", "-w", "W"],
        ["nightly", "IN", "-w", "W", "-q", "--progress", "never"],
        ["--progress", "never", "report", "W"],
        ["scan", "IN", "-q"],
        ["status", "W", "-v"],
        ["combine", "a.fits", "b.fits", "-o", "m.fits", "-q"],
    ],
)
def test_global_flags_anywhere(argv):
    args = build_parser().parse_args(argv)
    assert args.verbose + args.verbose_after + args.quiet + args.quiet_after >= 1 or (
        args.progress == "never"
    )


def test_global_flags_add_up_before_and_after():
    args = build_parser().parse_args(["-v", "run", "IN", "-w", "W", "-v"])
    assert args.verbose + args.verbose_after == 2
    args = build_parser().parse_args(["--progress", "never", "run", "IN", "-w", "W"])
    assert args.progress == "never"
    args = build_parser().parse_args(["run", "IN", "-w", "W", "--progress", "always"])
    assert args.progress == "always"


def test_run_help_promises_only_what_run_does(capsys):
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "darkflow report" in text  # reports are another command's job ...
    assert "scan, build masters, match, subtract, check" in text
    assert "subtract, reports" not in text  # ... not promised by run


# ----------------------------------------------------------------------------- combine
def test_combine_refuses_mixed_set_points_without_calling_a_side_the_majority(
    capsys, nina_darks, tmp_path
):
    out = tmp_path / "m.fits"
    code, _, err = run_cli(capsys, "combine", *nina_darks, "-o", out)
    assert code == 2 and not out.exists()
    one_line_error(err, "2 set-points", "3 at -20 °C, 3 at -10 °C", "--allow-mixed-temperature")
    assert "majority" not in err
    code, _, err = run_cli(
        capsys, "combine", *nina_darks, "-o", out, "--allow-mixed-temperature", "-q"
    )
    assert code == 0, err
    assert out.exists()


def test_combine_refuses_duplicates(capsys, nina_darks, tmp_path):
    one = nina_darks[0]
    copy = tmp_path / "copy.fits"
    shutil.copy(one, copy)
    out = tmp_path / "m.fits"
    code, _, err = run_cli(capsys, "combine", one, one, copy, "-o", out, "--allow-few")
    assert code == 2 and not out.exists()
    one_line_error(err, "2 duplicate frame(s) among 3", "the same file again", "the same bytes as")
    code, _, err = run_cli(
        capsys, "combine", one, one, copy, "-o", out, "--allow-few", "--allow-duplicates", "-q"
    )
    assert code == 0, err


def test_combine_never_overwrites_without_being_told(capsys, nina_darks, tmp_path):
    same_set = nina_darks[:3]
    out = tmp_path / "m.fits"
    out.write_bytes(b"precious")
    code, _, err = run_cli(capsys, "combine", *same_set, "-o", out)
    assert code == 2
    one_line_error(err, "exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    code, _, err = run_cli(capsys, "combine", *same_set, "-o", out, "--overwrite", "-q")
    assert code == 0, err
    assert out.read_bytes()[:9] == b"SIMPLE  ="


def test_combine_refuses_a_temperature_spread(capsys, nina_darks, tmp_path):
    from astropy.io import fits

    from darkflow.master import temperature_tolerance_c

    temps = [-10.0, -10.1, -9.9, -10.0 + temperature_tolerance_c() + 0.5]
    frames = []
    for i, (src, temp) in enumerate(zip(nina_darks[:3] * 2, temps, strict=False)):
        frames.append(tmp_path / f"dark{i}_{'warm' if i == 3 else 'ok'}.fits")
        with fits.open(src) as hdul:
            hdul[0].header["CCD-TEMP"] = temp
            hdul[0].header["DATE-OBS"] = f"2026-11-23T17:4{i}:00"
            hdul.writeto(frames[-1])
    code, _, err = run_cli(capsys, "combine", *frames, "-o", tmp_path / "m.fits")
    assert code == 2
    one_line_error(err, "from the median", "dark3_warm.fits", "--allow-mixed-temperature")
    assert "dark0_ok" not in err


def test_odd_frames_names_no_majority_in_a_tie():
    from darkflow.exceptions import odd_frames

    assert odd_frames(list("abcd"), [1, 1, 1, 2], "gain") == [("d", "gain=2 (majority 1)")]
    tie = odd_frames(list("abcdef"), [1, 1, 1, 2, 2, 2], "gain")
    assert [name for name, _ in tie] == list("abcdef")
    assert all("majority" not in why.replace("no majority", "") for _, why in tie)
    assert "no majority: 3 x 1, 3 x 2" in tie[0][1]
    assert (
        odd_frames(list("abc"), [1.0, 1.0001, 1.0], "egain", lambda a, b: abs(a - b) < 0.01) == []
    )


# ----------------------------------------------------------------------------- configuration
def test_config_defaults_print_every_key_with_a_comment(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "config", "--defaults")
    assert code == 0
    defaults = Config().to_dict()
    lines = out.splitlines()
    for section, values in defaults.items():
        assert f"[{section}]" in lines
        for key, value in values.items():
            shown = f"# {key} =  (unset)" if value is None else None
            idx = next(
                i for i, line in enumerate(lines) if line == shown or line.startswith(f"{key} = ")
            )
            assert lines[idx - 1].startswith("# ") and len(lines[idx - 1]) > 4, (section, key)
    path = tmp_path / "darkflow.toml"
    path.write_text(out)
    assert Config.load(path) == Config()


def test_example_configuration_in_the_docs_is_current_and_loads(capsys):
    example = ROOT / "docs" / "darkflow.example.toml"
    assert Config.load(example) == Config()
    _code, out, _ = run_cli(capsys, "config", "--defaults")
    assert example.read_text() == out, "regenerate: darkflow config --defaults > " + str(example)


def test_config_shows_the_effective_configuration(capsys, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[combine]\nsigma_low = 4.0\n")
    code, out, _ = run_cli(capsys, "config", "--config", path)
    assert code == 0
    assert tomllib.loads(out)["combine"]["sigma_low"] == 4.0
    path.write_text("[combine]\nsigma_lo = 4.0\n")
    code, _, err = run_cli(capsys, "config", "--config", path)
    assert code == 2
    one_line_error(err, "sigma_lo")


# ----------------------------------------------------------------------------- output
def test_piped_progress_prints_one_line_per_finished_stage():
    from darkflow.pipeline.progress import ConsoleProgress

    stream = io.StringIO()
    progress = ConsoleProgress(stream, summary_only=True)
    for stage, total in [("hashing", 142), ("biases", 0), ("hashing", 142), ("lights", 50)]:
        for done in range(total + 1):
            progress(stage, done, total)
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["hashing", "lights"]
    assert lines[0].split()[1] == "142/142"


@pytest.mark.integration
def test_run_summary_times_each_stage(capsys, tiny_night, tmp_path):
    code, out, err = run_cli(
        capsys, "run", tiny_night, "-w", tmp_path / "w", "--workers", "1", "--progress", "auto"
    )
    assert code == 0, err
    head = out.splitlines()[0]
    for stage in ("scan", "masters", "lights", "outputs"):
        assert f" {stage} " in head, head
    assert "s in all" in head and "scanned in" not in head
    # captured stderr is not a terminal: one line per finished stage at most, no 0/0 stages
    progress_lines = [line for line in err.splitlines() if "/" in line]
    assert len(progress_lines) <= 8, err
    assert not any(" 0/0 " in line for line in progress_lines), err


# ----------------------------------------------------------------------------- nightly layouts
@pytest.mark.integration
def test_nightly_gives_the_same_result_on_a_camera_a_night_and_an_archive(
    capsys, tiny_night, tmp_path
):
    """Nights come from the frames' dates, not from folder names: a camera folder whose target
    folder sorts before its calibration folder, the night folder holding it and an archive of
    nights calibrate the same lights the same way, and like `darkflow run`."""
    import pandas as pd

    from darkflow.report.results import Workdir

    archive = tmp_path / "archive"
    night = archive / "2026-11-23"
    camera = night / "nina_asi2600mm"
    shutil.copytree(tiny_night / "2026-11-23" / "nina_asi2600mm", camera)
    (camera / "M 31").rename(camera / "Andromeda")  # sorts before "Calibration"

    def outcome(workdir: Path) -> dict[str, str]:
        wd = Workdir(workdir)
        assert wd.nights() == ["2026-11-23"]
        lights = pd.concat([wd.lights(night=n) for n in wd.nights()])
        return {Path(p).name: s for p, s in zip(lights["path"], lights["status"], strict=True)}

    results = {}
    for name, root in [("camera", camera), ("night", night), ("archive", archive)]:
        code, out, err = run_cli(
            capsys,
            "nightly",
            root,
            "-w",
            tmp_path / f"w-{name}",
            "--reports",
            tmp_path / f"r-{name}",
            "--no-reports",
            "-q",
            "--workers",
            "1",
        )
        assert code == 0, err
        assert "2026-11-23" in out
        results[name] = outcome(tmp_path / f"w-{name}")
    code, _, err = run_cli(capsys, "run", camera, "-w", tmp_path / "w-run", "-q", "--workers", "1")
    assert code == 0, err
    results["run"] = outcome(tmp_path / "w-run")
    assert len(results["camera"]) == 3
    assert results["camera"] == results["night"] == results["archive"] == results["run"]
    assert list(results["camera"].values()).count("calibrated") >= 2, results["camera"]
