"""darkflow.viz.extra: fixed-pattern spectra, differences and the holoviews builders."""

from __future__ import annotations

import numpy as np
import pytest

from darkflow.exceptions import IncompatibleFramesError
from darkflow.viz import extra as vx


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_pixel_noise_ignores_row_and_column_offsets(rng):
    img = rng.normal(100.0, 5.0, (200, 300))
    patterned = img + rng.normal(0, 20, 300)[None, :] + rng.normal(0, 20, 200)[:, None]
    assert vx.pixel_noise(img) == pytest.approx(5.0, rel=0.03)
    assert vx.pixel_noise(patterned) == pytest.approx(vx.pixel_noise(img), rel=1e-9)
    with pytest.raises(IncompatibleFramesError):
        vx.pixel_noise(np.zeros(5))


def test_pattern_excess_finds_column_offsets(rng):
    ny, nx, sigma, col = 200, 300, 6.0, 1.0
    white = rng.normal(0, sigma, (ny, nx))
    cols = white + rng.normal(0, col, nx)[None, :]
    flat = vx.pattern_excess(white)
    assert flat["column"] == pytest.approx(1.0, abs=0.2) and flat["row"] == pytest.approx(
        1.0, abs=0.2
    )
    # expected: 1 + col² / (sigma² / ny)
    assert vx.pattern_excess(cols)["column"] == pytest.approx(1 + col**2 * ny / sigma**2, rel=0.3)
    assert vx.pattern_excess(cols)["row"] == pytest.approx(1.0, abs=0.2)


def test_spectra_are_robust_to_cosmic_rays_and_masks(rng):
    img = rng.normal(0, 5.0, (128, 160))
    hit = img.copy()
    hit[rng.integers(0, 128, 40), rng.integers(0, 160, 40)] += 5000.0
    assert vx.pattern_excess(hit)["column"] == pytest.approx(
        vx.pattern_excess(img)["column"], rel=0.1
    )
    mask = np.zeros(img.shape, bool)
    mask[:, :10] = True  # fully masked columns are filled, not NaN
    spectra = vx.fixed_pattern_spectra(img, mask=mask, label="x")
    assert np.isfinite(spectra["power"]).all()
    assert set(spectra["axis"]) == {"column", "row"} and set(spectra["label"]) == {"x"}
    col = spectra[spectra["axis"] == "column"]
    assert len(col) == 160 // 2 and col["freq"].max() == pytest.approx(0.5)
    with pytest.raises(IncompatibleFramesError):
        vx.fixed_pattern_spectra(img, mask=np.zeros((3, 3), bool))


def test_prepare_difference_against_uncertainties(rng):
    truth = rng.normal(500, 30, (100, 120))
    a = truth + rng.normal(0, 2.0, truth.shape)
    b = truth + 3.0 + rng.normal(0, 1.0, truth.shape)
    before = a.copy()
    d = vx.prepare_difference(a, b, ua=np.full(a.shape, 2.0), ub=np.full(a.shape, 1.0))
    np.testing.assert_array_equal(a, before)  # inputs untouched
    assert d.stats["median_adu"] == pytest.approx(-3.0, abs=0.1)
    assert d.stats["expected_std_adu"] == pytest.approx(np.hypot(2, 1))
    assert d.stats["robust_std_adu"] == pytest.approx(np.hypot(2, 1), rel=0.05)
    assert d.stats["z_width"] == pytest.approx(1.0, abs=0.05)
    assert len(set(d.spectra["label"])) == 3
    no_unc = vx.prepare_difference(a, b)
    assert no_unc.z is None and "z_width" not in no_unc.stats
    with pytest.raises(IncompatibleFramesError):
        vx.prepare_difference(a, b[:, :10])


def test_block_mean_and_limits():
    img = np.arange(1000 * 800, dtype=float).reshape(1000, 800)
    small, factor = vx.block_mean(img, max_size=400)
    assert factor == 3 and small.shape == (333, 266)
    assert small[0, 0] == pytest.approx(img[:3, :3].mean())
    lo, hi = vx.robust_limits(np.array([np.nan, 1.0, 1.0]))
    assert hi > lo


def _rendered(element) -> dict[str, list]:
    """Title -> glyph renderers of every bokeh plot the element renders to."""
    import holoviews as hv
    from bokeh.models import Plot

    model = hv.render(element, backend="bokeh")
    return {p.title.text: list(p.renderers) for p in model.select({"type": Plot})}


def test_builders_render_with_bokeh(rng):
    hv = pytest.importorskip("holoviews")
    hv.extension("bokeh")
    img = rng.normal(0, 5, (64, 80))
    d = vx.prepare_difference(img, img * 0.5, ua=np.ones(img.shape), ub=np.ones(img.shape))
    edges = np.linspace(-6, 6, 61)
    counts = np.histogram(rng.normal(size=5000), edges)[0]

    (image,) = _rendered(vx.make_image(img, title="t"))["t"]
    np.testing.assert_array_equal(image.data_source.data["image"][0], img)  # row 0 at y = 0
    (logged,) = _rendered(vx.make_image(np.abs(img) + 1, logz=True, title="log")).pop("log")
    assert type(logged.glyph.color_mapper).__name__ == "LogColorMapper"

    spectra = _rendered(vx.make_spectra(d.spectra))
    assert sorted(spectra) == [
        f"Fixed-pattern spectra: {axis} profile (dashed: white floor)" for axis in ("column", "row")
    ]
    for glyphs in spectra.values():  # each label's spectrum and its dashed white floor
        assert sorted(str(g.name) for g in glyphs if g.glyph.y == "power") == ["a", "a − b", "b"]
        assert sum(g.glyph.y == "floor" and g.glyph.line_dash == [6] for g in glyphs) == 3

    z_title = f"z width {d.stats['z_width']:.2f}"
    assert set(_rendered(vx.make_difference_view(d))) == {"difference", z_title}
    assert set(_rendered(vx.make_difference_view(d, show_z=False))) == {"difference"}

    hist = _rendered(vx.make_z_histogram(edges, {"a": counts, "empty": np.zeros(60)}))
    (lines,) = hist.values()
    assert [g.name for g in lines] == ["a", "N(0,1)"]  # an empty histogram draws nothing
    data, gauss = (
        {k: np.asarray(g.data_source.data[k], float) for k in ("z", "density")} for g in lines
    )
    expected = counts[counts > 0] / counts.sum() / np.diff(edges)[0]  # per unit z
    shown = data["density"][np.isfinite(data["density"])]  # steps: each bin's level drawn twice
    np.testing.assert_allclose(np.unique(shown.round(9)), np.unique(expected.round(9)))
    assert np.sum(gauss["density"]) * np.diff(gauss["z"])[0] == pytest.approx(1.0, rel=0.01)
    assert isinstance(vx.make_spectra(d.spectra.iloc[:0]), hv.Div)
