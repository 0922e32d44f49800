import pytest

from darkflow.config import DARK_LAW_KEYS, Config, DeprecatedSettingWarning, parse_size
from darkflow.exceptions import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64MB", 64_000_000),
        ("1GB", 1_000_000_000),
        ("1gb", 1_000_000_000),
        ("512MiB", 512 * 1024**2),
        ("1 GiB", 1024**3),
        ("1.5GB", 1_500_000_000),
        ("1024", 1024),
        (4096, 4096),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "GB", "-1GB", "1XB", 0, "abc"])
def test_parse_size_rejects(bad):
    with pytest.raises(ConfigError):
        parse_size(bad)


def test_toml_round_trip(tmp_path):
    path = tmp_path / "darkflow.toml"
    path.write_text(
        '[combine]\nsigma_low = 2.5\nmemory_limit = "64MB"\n[matching]\ndoubling_temp_c = 6.3\n'
    )
    cfg = Config.from_toml(path)
    assert cfg.combine.sigma_low == 2.5
    assert cfg.combine.memory_limit_bytes == 64_000_000
    assert cfg.matching.doubling_temp_c == 6.3
    assert Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "data",
    [
        {"combine": {"sigmalow": 3}},
        {"nosuchsection": {}},
        {"combine": {"sigma_low": "three"}},
        {"combine": {"max_iters": 2.5}},
        {"combine": {"scale": "median"}},
        {"combine": {"memory_limit": "lots"}},
        {"ingest": {"infer_type_from_path": "yes"}},
        {"combine": 3},
    ],
)
def test_invalid_config_is_a_clear_error(data):
    with pytest.raises(ConfigError):
        Config.from_dict(data)


def test_invalid_toml_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[combine\nsigma_low = ")
    with pytest.raises(ConfigError, match="invalid TOML"):
        Config.from_toml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        Config.from_toml(tmp_path / "missing.toml")


def test_section_hash_tracks_only_its_sections():
    base = Config()
    changed_light = base.with_overrides(subtract={"pedestal_adu": 100.0})
    changed_master = base.with_overrides(combine={"sigma_high": 4.0})
    assert base.section_hash("combine") == changed_light.section_hash("combine")
    assert base.section_hash("combine") != changed_master.section_hash("combine")
    assert base.section_hash("subtract") != changed_light.section_hash("subtract")


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.combine.sigma_low = 1.0  # type: ignore[misc]


def test_removed_light_tolerances_still_load_with_a_warning(tmp_path):
    """Fixed light tolerances became statistical gates: old files load, the keys are ignored."""
    path = tmp_path / "old.toml"
    path.write_text(
        "[verify]\nquarantine_confidence = 0.3\nmax_flux_change = 0.05\nmin_stars = 7\n"
    )
    with pytest.warns(FutureWarning, match="max_flux_change, quarantine_confidence"):
        cfg = Config.from_toml(path)
    assert cfg.verify.min_stars == 7
    assert not hasattr(cfg.verify, "quarantine_confidence")
    with pytest.raises(ConfigError):  # a key that never existed is still an error
        Config.from_dict({"verify": {"max_flux_changes": 0.05}})


def test_dark_law_keys_have_one_owner_and_the_old_verify_keys_still_load(tmp_path):
    """The dark-current law lives in [matching]; a file setting it in [verify] (the old place)
    loads with a warning naming the new place and which value is used."""
    assert not any(hasattr(Config().verify, k) for k in DARK_LAW_KEYS)
    path = tmp_path / "old.toml"
    path.write_text(
        "[matching]\ndoubling_temp_c = 5.5\n"
        "[verify]\ndoubling_temp_c = 5.5\ntemp_reading_sigma_c = 0.3\nmin_stars = 7\n"
    )
    with pytest.warns(DeprecatedSettingWarning, match=r"doubling_temp_c, temp_reading_sigma_c"):
        cfg = Config.from_toml(path)
    assert cfg.verify.min_stars == 7
    assert cfg.matching.doubling_temp_c == 5.5 and cfg.matching.temp_reading_sigma_c == 0.2
    with pytest.warns(DeprecatedSettingWarning, match=r"its value 0\.2 is used"):
        Config.from_dict({"verify": {"temp_reading_sigma_c": 0.3}})
    with pytest.warns(DeprecatedSettingWarning, match=r"moved"):  # overrides too
        cfg = Config().with_overrides(verify={"doubling_temp_sigma_c": 1.0})
    assert cfg == Config()


def test_a_verdict_depends_on_the_dark_law_it_scales_a_previous_master_with():
    """Changing the law in [matching] changes the expected scale of the previous-master gate."""
    from darkflow.config import MatchingConfig
    from darkflow.model import MasterMeta
    from darkflow.verify._stability import _expected_scale

    new, old = (MasterMeta("s", "cam", 60.0, t, None, 20) for t in (-5.0, -11.0))

    class _M:  # _expected_scale reads the metadata only
        def __init__(self, meta):
            self.meta = meta

    a = _expected_scale(_M(new), _M(old), MatchingConfig())
    b = _expected_scale(_M(new), _M(old), MatchingConfig(doubling_temp_c=3.0))
    assert a.value == pytest.approx(2.0) and b.value == pytest.approx(4.0)
    assert b.rel_sigma > a.rel_sigma > 0
