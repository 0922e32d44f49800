"""pyproject.toml and environment.yml list the same dependencies with the same lower bounds."""

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names of PyPI packages where they differ (dask[distributed] is two conda packages)
CONDA_NAME = {"dask[distributed]": ["dask", "distributed"]}
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(>=\s*[0-9][^,;\s]*)?")


def _parse(req: str) -> tuple[str, str | None]:
    m = _REQ.match(req)
    assert m, f"cannot parse requirement {req!r}"
    name, bound = m.group(1).lower(), m.group(2)
    return name, bound.replace(" ", "") if bound else None


def _pyproject() -> dict[str, str | None]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    out: dict[str, str | None] = {}
    for req in reqs:
        name, bound = _parse(req)
        for conda in CONDA_NAME.get(name, [name]):
            out[conda] = bound
    return out


def _environment() -> tuple[dict[str, str | None], list]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    out: dict[str, str | None] = {}
    pip: list = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = dep["pip"]
            continue
        name, bound = _parse(dep)
        if name not in ("python", "pip"):
            out[name] = bound
    return out, pip


def test_dependency_lists_agree():
    py = _pyproject()
    conda, _ = _environment()
    assert py == conda


def test_every_dependency_has_a_lower_bound():
    assert all(bound and bound.startswith(">=") for bound in _pyproject().values())


def test_environment_installs_the_package_without_deps():
    _, pip = _environment()
    assert pip == ["-e . --no-deps"]


def test_design_card_layout():
    for name in [
        "pyproject.toml",
        "environment.yml",
        "darkflow",
        "notebooks",
        "widgets",
        "tests",
        "reports",
        "README.md",
        "Makefile",
        ".ci/run",
        "benchmarks",
    ]:
        assert (ROOT / name).exists(), name


def test_widgets_and_darkflow_are_installed_packages():
    """The top-level widgets/ folder is the package ``darkflow_widgets`` (setup.py maps it)."""
    import darkflow
    import darkflow_widgets

    assert Path(darkflow.__file__).parent == ROOT / "darkflow"
    assert Path(darkflow_widgets.__file__).parent == ROOT / "widgets"


def test_nothing_imports_the_widgets_folder_by_its_folder_name():
    """``import widgets`` works only by accident from the repository root (and not at all from a
    wheel); everything imports ``darkflow_widgets``."""
    pattern = re.compile(r"^\s*(from\s+widgets(\.|\s)|import\s+widgets\b)", re.M)
    offenders = []
    for path in [
        *ROOT.glob("*/**/*.py"),
        *ROOT.glob("notebooks/**/*.ipynb"),
        *ROOT.glob("docs/*.md"),
    ]:
        if ".venv" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            cells = json.loads(text)["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if pattern.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_one_version_source():
    """The version is written once, in darkflow/_version.py; pyproject.toml reads it."""
    import darkflow
    from darkflow import _version

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in data["project"]
    assert "version" in data["project"]["dynamic"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "darkflow._version.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+([.a-z0-9+]*)?", darkflow.__version__)
    assert darkflow.__version__ == _version.__version__


def test_license_file_matches_the_declared_license():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "BSD-3-Clause"
    assert data["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text


def test_core_import_is_light():
    """The core package must not pull in the plotting/notebook stack or numba at import."""
    import subprocess
    import sys

    code = (
        "import sys, darkflow, darkflow.config, darkflow.model, darkflow.matching;"
        "heavy = [m for m in ('holoviews', 'bokeh', 'papermill', 'ipywidgets', 'numba', 'panel')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _undeclared(
    requirements: list[str], folders: tuple[str, ...], *, transitive: bool = True
) -> dict[str, list[str]]:
    """Third-party modules imported by the ``.py`` files of ``folders`` that none of the
    ``requirements`` installs: module -> files. With ``transitive`` what the requirements pull
    in themselves counts too; without, only what they name (``dask[distributed]``: both)."""
    import ast
    import sys
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires

    names = [_parse(r)[0] for r in requirements]
    declared = {n.split("[")[0] for n in names} | {c for n in names for c in CONDA_NAME.get(n, [])}
    installed = set(declared)
    pending = list(declared) if transitive else []
    while pending:
        try:
            reqs = requires(pending.pop()) or []
        except PackageNotFoundError:  # a platform-specific requirement not installed here
            continue
        for req in reqs:
            if "extra ==" in req and "distributed" not in req:
                continue
            name = _parse(req)[0].split("[")[0].replace("_", "-")
            if name not in installed:
                installed.add(name)
                pending.append(name)
    dists = packages_distributions()
    local = {p.stem for folder in folders for p in (ROOT / folder).rglob("*.py")}
    local |= {p.name for folder in folders for p in (ROOT / folder).rglob("*") if p.is_dir()}
    missing: dict[str, list[str]] = {}
    for path in [p for folder in folders for p in (ROOT / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("darkflow", "darkflow_widgets"):
                    continue
                if top in local:  # a test helper or benchmark script imported by name
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & installed:
                    missing.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return missing


def test_every_third_party_import_is_a_declared_runtime_dependency():
    """A module darkflow or widgets imports must be installed by `pip install .` (no dev extras):
    `make demo` runs on exactly that."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    missing = _undeclared(data["project"]["dependencies"], ("darkflow", "widgets"))
    assert not missing, f"imported but not a runtime dependency: {missing}"


def test_every_third_party_import_of_the_tests_is_declared():
    """The tests and benchmarks import only what the dependencies and the dev extras name: a
    module that merely comes with another package breaks the day that package drops it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    missing = _undeclared(reqs, ("tests", "benchmarks"), transitive=False)
    assert not missing, f"imported by tests or benchmarks but not declared: {missing}"
