"""darkflow nightly: several nights into one work directory, session reports, overviews, index."""

import shutil

import pytest

from darkflow.report.nightly import find_nights, headline, run_nightly


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    from darkflow.simulate import get_preset, simulate_night

    root = tmp_path_factory.mktemp("nights")
    sessions = get_preset("tiny").sessions[1:3]  # two cameras keep the notebook count small
    simulate_night(root / "a", preset="tiny", seed=11, date="2026-11-20", sessions=sessions)
    simulate_night(root / "b", preset="tiny", seed=12, date="2026-11-21", sessions=sessions)
    combined = root / "all"
    for name in ("a", "b"):
        for night in (root / name).iterdir():
            if not night.name.startswith("_"):
                shutil.copytree(night, combined / night.name)
    return combined


def test_find_nights(two_nights, tmp_path):
    assert [p.name for p in find_nights(two_nights)] == ["2026-11-20", "2026-11-21"]
    (tmp_path / "x.fits").write_bytes(b"")
    assert find_nights(tmp_path) == [tmp_path]


def test_headline():
    assert headline({"calibrated": 5, "degraded": 0, "quarantined": 0}) == "5/5 calibrated"
    assert headline({"calibrated": 3, "degraded": 1, "quarantined": 2}) == (
        "3/6 calibrated, 1 degraded, 2 quarantined"
    )


@pytest.mark.integration
@pytest.mark.browser
def test_nightly_reports(two_nights, tmp_path):
    from helpers.browser import check_page

    from darkflow.report.results import Workdir

    reports = tmp_path / "reports"
    result = run_nightly(two_nights, workdir=tmp_path / "w", reports=reports, workers=2)
    assert set(result.nights) == {"2026-11-20", "2026-11-21"}
    wd = Workdir(tmp_path / "w")
    assert wd.nights() == ["2026-11-20", "2026-11-21"]
    for night in result.nights:
        # the first night's reports stay readable after the second night's run
        assert len(wd.lights(night=night)) > 0
        sessions = {s for n, s in wd.sessions(night)}
        for session in sessions:
            page = (reports / night / f"{session}.html").read_text()
            assert session in page and night in page and "Traceback" not in page
        overview = (reports / night / "index.html").read_text()
        assert night in overview and "Traceback" not in overview
    top = (reports / "index.html").read_text()
    assert "2026-11-20" in top and "2026-11-21" in top and "calibrated" in top
    assert all(f'href="{night}/index.html"' in top for night in result.nights)
    check = check_page(reports / "2026-11-21" / "index.html")
    assert check.requests == () and check.canvases >= 2


@pytest.mark.integration
def test_failing_session_notebook_still_gives_a_report(tiny_run, tmp_path):
    """A notebook that raises yields an HTML saying what failed; the other sessions go on."""
    import nbformat

    from darkflow.report import build_reports, notebook_path

    workdir, _, _ = tiny_run
    nb = nbformat.read(notebook_path("session_report.ipynb"), as_version=4)
    nb.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            "if session.startswith('zwo-asi294'):\n    raise RuntimeError('boom in ' + session)"
        ),
    )
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    reports = build_reports(
        workdir,
        output=tmp_path / "r",
        notebook=broken,
        workers=2,
        sessions=["zwo-asi294mc-pro", "zwo-asi2600mm-pro"],
    )
    by_session = {s["session"]: s for s in reports.sessions}
    assert by_session["zwo-asi294mc-pro"]["ok"] is False
    assert "boom in zwo-asi294mc-pro" in by_session["zwo-asi294mc-pro"]["error"]
    assert by_session["zwo-asi2600mm-pro"]["ok"] is True
    html = (tmp_path / "r" / "2026-11-23" / "zwo-asi294mc-pro.html").read_text()
    assert "RuntimeError" in html and "boom in zwo-asi294mc-pro" in html
    assert "failed" in (tmp_path / "r" / "index.html").read_text()
