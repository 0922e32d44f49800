"""The wheel a user installs: notebooks and templates inside the package, a LICENSE, no top-level
``widgets``. CI (.ci/run) also installs it into a fresh virtual environment and runs the demo."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # builds the wheel

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dest: Path) -> Path:
    """The files of the working tree (tracked or new, not ignored) copied to ``dest``: building
    there leaves nothing in the repository and no stale ``build/`` from an earlier build."""
    git = shutil.which("git")
    listed = (
        subprocess.run(
            [git, "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if git
        else None
    )
    if listed is None or listed.returncode != 0:
        pytest.skip("the wheel test builds from the files git lists; this is not a git checkout")
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    if (
        proc.returncode != 0
        and "setuptools" in proc.stderr
        and "No matching distribution" in proc.stderr
    ):
        pytest.skip(
            "building a wheel needs setuptools>=77 from the package index, unreachable here"
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("darkflow-*.whl")
    return path


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_report_and_teaching_notebooks_are_inside_the_package(names):
    for nb in (ROOT / "notebooks").rglob("*.ipynb"):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        assert f"darkflow/notebooks/{nb.relative_to(ROOT / 'notebooks').as_posix()}" in names, nb


def test_templates_are_inside_the_package(names):
    templates = [p for p in (ROOT / "darkflow" / "report" / "templates").rglob("*") if p.is_file()]
    assert templates
    for path in templates:
        assert path.relative_to(ROOT).as_posix() in names, path


def test_license_is_in_the_wheel(names, wheel):
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(license_name).decode().startswith("BSD 3-Clause License")
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: BSD-3-Clause" in metadata


def test_top_level_packages_cannot_collide(names):
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"darkflow", "darkflow_widgets"}
    assert "darkflow_widgets/explorer.py" in names


def test_every_source_module_is_in_the_wheel(names):
    for path in [*(ROOT / "darkflow").rglob("*.py"), *(ROOT / "widgets").rglob("*.py")]:
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("widgets/"):
            rel = "darkflow_widgets/" + rel.removeprefix("widgets/")
        assert rel in names, rel


def test_version_of_the_wheel_is_the_package_version(wheel):
    import darkflow

    assert wheel.name.startswith(f"darkflow-{darkflow.__version__}-")
