"""Header normalisation: each capture program's style, every keyword rule, and a fuzz test."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from astropy.io import fits
from helpers.ingest import card, header_text, sample_header, structural
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkflow.config import IngestConfig
from darkflow.exceptions import ConfigError
from darkflow.ingest import _keywords as kw
from darkflow.ingest.headers import (
    IngestReason,
    NormalisedHeader,
    eligibility_of,
    normalise,
    parse_fits_datetime,
    parse_number,
)
from darkflow.model import Eligibility, FrameMeta, FrameType

R = IngestReason
DOCS = Path(__file__).resolve().parents[1] / "docs" / "ingestion.md"


def base(**extra):
    """A minimal eligible header as a plain mapping, plus ``extra`` keywords."""
    h = {
        "SIMPLE": True,
        "BITPIX": 16,
        "NAXIS": 2,
        "NAXIS1": 12,
        "NAXIS2": 8,
        "BZERO": 32768,
        "IMAGETYP": "DARK",
        "EXPTIME": 60.0,
        "CCD-TEMP": -10.0,
        "INSTRUME": "ZWO ASI2600MM Pro",
        "DATE-OBS": "2024-03-02T22:19:00.455",
    }
    h.update(extra)
    return {k: v for k, v in h.items() if v is not ...}


def norm(header, path="/data/frame.fits", **config):
    return normalise(header, path, config=IngestConfig(**config))


# --------------------------------------------------------------------------- program samples
EXPECTED = {
    # name: frame type, exptime, ccd temp, set temp, gain setting, egain, offset, bin,
    #       program, UTC start, status, reasons
    "nina": (
        "light",
        120.0,
        -9.8,
        -10.0,
        100.0,
        0.776999998092651,
        50.0,
        1,
        "N.I.N.A.",
        datetime(2024, 3, 2, 22, 19, 0, 455000, tzinfo=UTC),
        "eligible",
        (),
    ),
    "nina_simulator": (
        "dark",
        60.0,
        10.0,
        None,
        None,
        0.8,
        None,
        1,
        "N.I.N.A.",
        datetime(2024, 3, 3, 1, 0, tzinfo=UTC),
        "eligible",
        (),
    ),
    "sgp": (
        "dark",
        300.0,
        -17.5,
        -18.0,
        120.0,
        3.99000000953674,
        30.0,
        2,
        "SGP",
        datetime(2024, 5, 30, 0, 22, 49, 96882, tzinfo=UTC),
        "eligible",
        (),
    ),
    "sgp_dslr": (
        "light",
        180.0,
        None,
        None,
        800.0,
        None,
        None,
        1,
        "SGP",
        datetime(2024, 9, 12, 21, 40, 1, 123000, tzinfo=UTC),
        "isolated",
        (R.MISSING_TEMPERATURE,),
    ),
    "maxim": (
        "dark",
        300.0,
        -34.993802250000002,
        -35.0,
        None,
        0.37,
        None,
        2,
        "MaxIm DL",
        datetime(2024, 7, 4, 14, 3, 3, tzinfo=UTC),
        "eligible",
        (),
    ),
    "maxim_strings": (
        "light",
        60.0,
        -25.0,
        -25.0,
        None,
        None,
        None,
        1,
        "MaxIm DL",
        datetime(2024, 7, 4, 15, 0, 0, 120000, tzinfo=UTC),
        "eligible",
        (),
    ),
    "maxim_calibrated": (
        "light",
        300.0,
        -35.0,
        -35.0,
        None,
        None,
        None,
        1,
        "MaxIm DL",
        datetime(2018, 7, 4, 14, 3, 3, tzinfo=UTC),
        "isolated",
        (R.ALREADY_CALIBRATED,),
    ),
    "sharpcap": (
        "dark",
        280.0,
        -0.5,
        0.0,
        300.0,
        0.00766,
        8.0,
        1,
        "SharpCap",
        datetime(2025, 3, 19, 22, 51, 59, 384632, tzinfo=UTC),
        "isolated",
        (R.FRAME_TYPE_INFERRED,),
    ),
    "asiair": (
        "light",
        300.0,
        -10.1,
        -10.0,
        100.0,
        None,
        50.0,
        1,
        "ASIAIR",
        datetime(2024, 10, 5, 4, 12, 0, 123456, tzinfo=UTC),
        "eligible",
        (),
    ),
    "indi_old": (
        "light",
        120.0,
        -15.0,
        None,
        120.0,
        None,
        30.0,
        1,
        "INDI",
        datetime(2024, 1, 12, 22, 1, 3, 123000, tzinfo=UTC),
        "eligible",
        (),
    ),
    "ekos": (
        "dark",
        120.0,
        -15.01,
        None,
        120.0,
        None,
        30.0,
        1,
        "INDI",
        datetime(2024, 1, 12, 23, 30, 0, 500000, tzinfo=UTC),
        "eligible",
        (),
    ),
    "observatory": (
        "light",
        90.0,
        -100.2,
        -100.0,
        None,
        1.27,
        None,
        2,
        "LCOGT",
        datetime(2024, 2, 1, 3, 4, 5, 678000, tzinfo=UTC),
        "eligible",
        (),
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_program_samples(name):
    ftype, exp, temp, setp, gain, egain, offset, binning, prog, date, status, reasons = EXPECTED[
        name
    ]
    path = "/data/2024/darks/frame_001.fits" if name == "sharpcap" else "/data/frame_001.fits"
    result = normalise(sample_header(name), path)
    m = result.meta
    assert m.frame_type == ftype
    assert m.exptime_s == exp
    assert m.ccd_temp_c == temp
    assert m.set_temp_c == setp
    assert m.gain_setting == gain
    assert m.egain_e_per_adu == egain
    assert m.offset == offset
    assert (m.xbin, m.ybin) == (binning, binning)
    assert m.source_program == prog
    assert m.date_obs_utc == date
    assert m.shape == (8, 12) and m.dtype == "uint16"
    assert result.eligibility == status
    assert result.reasons == reasons


def test_sample_details():
    nina = normalise(sample_header("nina"), "/x.fits").meta
    assert nina.bayer_pattern == "RGGB"
    assert nina.readout_mode == "High Speed"
    assert nina.object_name == "NGC 2244" and nina.filter_name == "L-eXtreme"
    assert nina.site_longitude_deg == pytest.approx(16.4)
    sharpcap = normalise(sample_header("sharpcap"), "/darks/x.fits").meta
    assert sharpcap.camera_id == "112E900511080900"
    assert sharpcap.frame_type_inferred
    assert sharpcap.bayer_pattern is None  # COLORTYP='RAW' is not a pattern
    sgp = normalise(sample_header("sgp"), "/x.fits").meta
    assert sgp.site_longitude_deg == pytest.approx(3 + 43 / 60)
    maxim = normalise(sample_header("maxim"), "/x.fits").meta
    assert maxim.readout_mode == "Monochrome"
    assert maxim.site_longitude_deg == pytest.approx(149 + 3 / 60 + 52 / 3600)
    ekos = normalise(sample_header("ekos"), "/x.fits").meta
    assert ekos.darktime_s == 120.0
    assert ekos.site_longitude_deg == pytest.approx(-4.5)  # 355.5 E folded
    cal = normalise(sample_header("maxim_calibrated"), "/x.fits").meta
    assert cal.calibrated and cal.pedestal == -100.0


def test_astropy_header_and_plain_mapping_agree():
    header = sample_header("sgp")
    assert normalise(header, "/x.fits") == normalise(dict(header), "/x.fits")


def test_lower_case_keys_in_a_mapping():
    lower = {k.lower(): v for k, v in base().items()}
    assert norm(lower).meta == norm(base()).meta


def test_input_header_is_not_modified():
    header = sample_header("maxim_strings")
    before = header.tostring()
    normalise(header, "/x.fits")
    assert header.tostring() == before


# --------------------------------------------------------------------------- frame type
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("LIGHT", "light"),
        ("Light Frame", "light"),
        ("light", "light"),
        ("Light   ", "light"),
        ("  Dark Frame  ", "dark"),
        ("DARK", "dark"),
        ("Bias Frame", "bias"),
        ("BIAS", "bias"),
        ("Flat Frame", "flat"),
        ("Flat Field", "flat"),
        ("DARKFLAT", "darkflat"),
        ("Dark Flat", "darkflat"),
        ("FLATDARK", "darkflat"),
        ("object", "light"),
        ("zero", "bias"),
    ],
)
def test_frame_type_values(value, expected):
    result = norm(base(IMAGETYP=value))
    assert result.meta.frame_type == expected
    assert result.eligibility == "eligible"


def test_indi_frame_keyword_alone():
    result = norm(base(IMAGETYP=..., FRAME="Flat"))
    assert result.meta.frame_type == FrameType.FLAT and result.eligibility == "eligible"


def test_imagetyp_and_frame_disagree_is_rejected():
    result = norm(base(IMAGETYP="Light Frame", FRAME="Dark"))
    assert R.INCONSISTENT_KEYS in result.reasons and result.eligibility == "rejected"


def test_unknown_frame_type_value_is_isolated():
    result = norm(base(IMAGETYP="Tricolor Image"))
    assert result.meta.frame_type == FrameType.UNKNOWN
    assert result.reasons == (R.UNKNOWN_FRAME_TYPE,)
    assert result.eligibility == "isolated"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/night/Dark_300s_0001.fits", "dark"),
        ("/night/darks/capture_0001.fits", "dark"),
        ("/night/Bias/0001.fits", "bias"),
        ("/night/Flats/Ha/0001.fits", "flat"),
        ("/night/DarkFlat_0001.fits", "darkflat"),
        ("/night/flat-dark/0001.fits", "darkflat"),
        ("/night/M42/Lights/0001.fits", "light"),
    ],
)
def test_frame_type_inferred_from_path(path, expected):
    result = normalise(base(IMAGETYP=...), path)
    assert result.meta.frame_type == expected
    assert result.meta.frame_type_inferred
    assert result.reasons == (R.FRAME_TYPE_INFERRED,)
    assert result.eligibility == "isolated"


def test_path_inference_ignores_words_inside_names_and_can_be_disabled():
    result = normalise(base(IMAGETYP=...), "/home/darkflow/M42/capture_0001.fits")
    assert result.meta.frame_type == FrameType.UNKNOWN
    assert R.UNKNOWN_FRAME_TYPE in result.reasons
    off = norm(base(IMAGETYP=...), "/x/darks/a.fits", infer_type_from_path=False)
    assert off.meta.frame_type == FrameType.UNKNOWN and not off.meta.frame_type_inferred


# --------------------------------------------------------------------------- exposure
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"EXPTIME": "6.00000000000E+001"}, 60.0),
        ({"EXPTIME": " 1.5D+01 "}, 15.0),
        ({"EXPTIME": "0,5"}, 0.5),
        ({"EXPTIME": ..., "EXPOSURE": 30}, 30.0),
        ({"EXPTIME": 30.0, "EXPOSURE": "3.00000000000E+001"}, 30.0),
        ({"EXPTIME": ..., "EXP": 15.0}, 15.0),
        ({"IMAGETYP": "BIAS", "EXPTIME": 0}, 0.0),
    ],
)
def test_exposure_spellings(extra, expected):
    result = norm(base(**extra))
    assert result.meta.exptime_s == expected
    assert result.eligibility == "eligible"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"EXPTIME": ...}, R.MISSING_EXPOSURE),
        ({"EXPTIME": ""}, R.MISSING_EXPOSURE),
        ({"EXPTIME": -1.79769313486232e308}, R.MISSING_EXPOSURE),
        ({"EXPTIME": math.inf}, R.MISSING_EXPOSURE),
        ({"EXPTIME": math.nan}, R.INVALID_EXPOSURE),
        ({"EXPTIME": "NaN"}, R.INVALID_EXPOSURE),
        ({"EXPTIME": "sixty"}, R.INVALID_EXPOSURE),
        ({"EXPTIME": -5.0}, R.INVALID_EXPOSURE),
        ({"EXPTIME": True}, R.INVALID_EXPOSURE),
        ({"EXPTIME": 60.0, "EXPOSURE": 30.0}, R.INCONSISTENT_KEYS),
    ],
)
def test_bad_exposure_is_rejected(extra, reason):
    result = norm(base(**extra))
    assert reason in result.reasons
    assert result.eligibility == "rejected"


def test_darktime():
    assert norm(base(DARKTIME=61.5)).meta.darktime_s == 61.5
    assert norm(base()).meta.darktime_s is None


# --------------------------------------------------------------------------- temperature
def test_temperat_alias_and_sentinels():
    assert norm(base(**{"CCD-TEMP": ..., "TEMPERAT": -12.5})).meta.ccd_temp_c == -12.5
    sentinel = norm(base(**{"CCD-TEMP": -1.79769313486232e308}))
    assert sentinel.meta.ccd_temp_c is None
    assert sentinel.reasons == (R.MISSING_TEMPERATURE,)
    setp = norm(base(**{"SET-TEMP": "-1.79769313486232E+308"}))
    assert setp.meta.set_temp_c is None and setp.eligibility == "eligible"
    assert norm(base(**{"SET-TEMP": math.nan})).eligibility == "eligible"


@pytest.mark.parametrize("bad", [math.nan, "NaN", "warm", -300.0, 400.0])
def test_invalid_temperature_is_isolated(bad):
    result = norm(base(**{"CCD-TEMP": bad}))
    assert result.meta.ccd_temp_c is None
    assert R.INVALID_VALUE in result.reasons and R.MISSING_TEMPERATURE in result.reasons
    assert result.eligibility == "isolated"
    assert any("CCD-TEMP" in d for d in result.details)


# --------------------------------------------------------------------------- gain and offset
def test_gain_semantics_amateur_vs_observatory():
    amateur = norm(base(GAIN=100, EGAIN=0.78, SWCREATE="N.I.N.A. 3.0"))
    assert (amateur.meta.gain_setting, amateur.meta.egain_e_per_adu) == (100.0, 0.78)
    observatory = norm(base(GAIN=1.27))
    assert (observatory.meta.gain_setting, observatory.meta.egain_e_per_adu) == (None, 1.27)
    integral = norm(base(GAIN=2))  # unknown program, no EGAIN, integral: a setting
    assert integral.meta.gain_setting == 2.0 and integral.meta.egain_e_per_adu is None
    unknown_with_egain = norm(base(GAIN=2.5, EGAIN=1.1))
    assert unknown_with_egain.meta.gain_setting == 2.5


def test_gain_comment_decides_for_unknown_programs():
    cards = [*structural(), card("GAIN", 2, "[electrons/count] Pixel gain")]
    header = fits.Header.fromstring(header_text(cards))
    result = normalise(header, "/x.fits")
    assert result.meta.egain_e_per_adu == 2.0 and result.meta.gain_setting is None


def test_gain_keyword_config_override():
    as_setting = norm(base(GAIN=1.27), gain_keyword="setting")
    assert as_setting.meta.gain_setting == 1.27 and as_setting.meta.egain_e_per_adu is None
    as_egain = norm(base(GAIN=100, SWCREATE="N.I.N.A."), gain_keyword="e_per_adu")
    assert as_egain.meta.gain_setting is None and as_egain.meta.egain_e_per_adu == 100.0
    with pytest.raises(ConfigError):
        IngestConfig(gain_keyword="bogus")


def test_sharpcap_egain_from_adc_bits_when_egainsav_missing():
    header = sample_header("sharpcap")
    del header["EGAINSAV"]
    meta = normalise(header, "/darks/x.fits").meta
    assert meta.egain_e_per_adu == pytest.approx(0.1226 / 16)  # 12-bit ADC saved as 16-bit


def test_dslr_iso_is_the_gain_setting():
    meta = norm(base(ISO=1600, **{"CCD-TEMP": ...})).meta
    assert meta.gain_setting == 1600.0


def test_offset_and_blklevel():
    assert norm(base(BLKLEVEL=8)).meta.offset == 8.0
    assert norm(base(OFFSET=8, BLKLEVEL=8)).eligibility == "eligible"
    bad = norm(base(OFFSET=8, BLKLEVEL=10))
    assert R.INCONSISTENT_KEYS in bad.reasons and bad.eligibility == "rejected"


def test_invalid_gain_is_isolated():
    result = norm(base(GAIN="high"))
    assert result.meta.gain_setting is None
    assert result.reasons == (R.INVALID_VALUE,)


# --------------------------------------------------------------------------- binning
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"XBINNING": 2, "YBINNING": 2}, (2, 2)),
        ({"CCDXBIN": 3, "CCDYBIN": 3}, (3, 3)),
        ({"XBINNING": "2", "YBINNING": 2.0}, (2, 2)),
        ({"BINNING": "2*2"}, (2, 2)),
        ({"BINNING": "1x2"}, (1, 2)),
        ({}, (1, 1)),
    ],
)
def test_binning(extra, expected):
    result = norm(base(**extra))
    assert (result.meta.xbin, result.meta.ybin) == expected
    assert result.eligibility == "eligible"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"XBINNING": 2, "CCDXBIN": 1}, R.INCONSISTENT_KEYS),
        ({"XBINNING": 0}, R.INVALID_BINNING),
        ({"XBINNING": 1.5}, R.INVALID_BINNING),
        ({"YBINNING": "two"}, R.INVALID_BINNING),
        ({"BINNING": "big"}, R.INVALID_BINNING),
    ],
)
def test_bad_binning_is_rejected(extra, reason):
    result = norm(base(**extra))
    assert reason in result.reasons and result.eligibility == "rejected"


# --------------------------------------------------------------------------- dates
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-30T00:22:49.0968820", datetime(2024, 5, 30, 0, 22, 49, 96882)),
        ("2024-05-30T00:22:49.0968826", datetime(2024, 5, 30, 0, 22, 49, 96883)),
        ("2024-05-30T00:22:49.9999996", datetime(2024, 5, 30, 0, 22, 50)),
        ("2024-05-30T00:22:49", datetime(2024, 5, 30, 0, 22, 49)),
        ("2024-05-30 00:22:49.5", datetime(2024, 5, 30, 0, 22, 49, 500000)),
        (" 2024-05-30T00:22:49.123  ", datetime(2024, 5, 30, 0, 22, 49, 123000)),
    ],
)
def test_parse_fits_datetime(text, expected):
    assert parse_fits_datetime(text) == (expected, False)


def test_parse_fits_datetime_zones_and_old_formats():
    assert parse_fits_datetime("2024-05-30T00:22:49Z") == (
        datetime(2024, 5, 30, 0, 22, 49, tzinfo=UTC),
        True,
    )
    assert parse_fits_datetime("2024-05-30T02:22:49+02:00")[0] == datetime(
        2024, 5, 30, 0, 22, 49, tzinfo=UTC
    )
    assert parse_fits_datetime("2024-05-30", "21:04:46.5")[0] == datetime(
        2024, 5, 30, 21, 4, 46, 500000
    )
    assert parse_fits_datetime("04/07/98", "14:03:03")[0] == datetime(1998, 7, 4, 14, 3, 3)
    for bad in ("yesterday", "2024-13-01T00:00:00", "0001-01-01T00:00:00", 2024, None):
        assert parse_fits_datetime(bad) == (None, False)


def test_date_from_mjd_and_consistency():
    only_mjd = norm(base(**{"DATE-OBS": ..., "MJD-OBS": 60341.5}))
    assert only_mjd.meta.date_obs_utc == datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    agree = norm(base(**{"DATE-OBS": "2024-02-01T12:00:10", "MJD-OBS": 60341.5}))
    assert agree.eligibility == "eligible"
    disagree = norm(base(**{"DATE-OBS": "2024-02-01T14:00:00", "MJD-OBS": 60341.5}))
    assert disagree.reasons == (R.INCONSISTENT_TIME,)


def test_missing_and_invalid_dates_are_isolated():
    missing = norm(base(**{"DATE-OBS": ...}))
    assert missing.reasons == (R.MISSING_DATE,) and missing.eligibility == "isolated"
    invalid = norm(base(**{"DATE-OBS": "2024-02-30T00:00:00"}))
    assert set(invalid.reasons) == {R.INVALID_VALUE, R.MISSING_DATE}


def test_date_loc_is_kept_naive():
    result = norm(base(**{"DATE-LOC": "2024-03-02T23:19:00.455"}))
    assert result.date_local == datetime(2024, 3, 2, 23, 19, 0, 455000)


# --------------------------------------------------------------------------- misc fields
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"BAYERPAT": "RGGB"}, "RGGB"),
        ({"BAYERPAT": "rggb "}, "RGGB"),
        ({"BAYERPAT": "RGGB", "XBAYROFF": 1}, "GRBG"),
        ({"BAYERPAT": "RGGB", "YBAYROFF": 1}, "GBRG"),
        ({"BAYERPAT": "RGGB", "XBAYROFF": 1, "YBAYROFF": 1}, "BGGR"),
        # ROWORDER: a bottom-up file stores the readout's last row first (8 rows: odd phase)
        ({"BAYERPAT": "RGGB", "ROWORDER": "TOP-DOWN"}, "RGGB"),
        ({"BAYERPAT": "RGGB", "ROWORDER": "BOTTOM-UP"}, "GBRG"),
        ({"BAYERPAT": "RGGB", "ROWORDER": "BOTTOM-UP", "NAXIS2": 7}, "RGGB"),
        ({"BAYERPAT": "GRBG", "ROWORDER": "BOTTOM-UP", "YBAYROFF": 1}, "GRBG"),
        ({"CFAIMAGE": "no"}, None),
        ({"COLORTYP": "RGB"}, None),
    ],
)
def test_bayer_pattern(extra, expected):
    assert norm(base(**extra)).meta.bayer_pattern == expected


@pytest.mark.parametrize(
    ("extra", "calibrated"),
    [
        ({"CALSTAT": "BDF", "PEDESTAL": -100}, True),
        ({"CALSTAT": "D"}, True),
        ({"PEDESTAL": -100}, False),
        ({"HISTORY": ["darkflow 0.1: dark subtracted with master abc"]}, True),
        ({"HISTORY": "Dark Subtraction (Dark 10, 4864 x 3232)"}, True),
        ({"HISTORY": ["File was processed by PinPoint 5.1.8"]}, False),
        ({"IMAGETYP": "Master Dark"}, True),
    ],
)
def test_already_calibrated_frames_are_isolated(extra, calibrated):
    result = norm(base(**extra))
    assert result.meta.calibrated is calibrated
    assert (R.ALREADY_CALIBRATED in result.reasons) is calibrated
    assert result.eligibility == ("isolated" if calibrated else "eligible")


def test_stacked_frames_are_isolated():
    assert norm(base(STACKCNT=187)).reasons == (R.STACKED,)
    assert norm(base(SNAPSHOT=1)).eligibility == "eligible"


def test_missing_instrument_is_isolated():
    result = norm(base(INSTRUME=...))
    assert result.reasons == (R.MISSING_INSTRUMENT,)
    assert result.meta.config_signature.startswith("unknown_")


def test_cube_and_empty_primary():
    assert R.NOT_2D in norm(base(NAXIS=3, NAXIS3=3)).reasons
    assert R.NO_IMAGE in norm(base(NAXIS=0)).reasons


def test_tile_compressed_header_uses_z_keywords():
    meta = norm(
        base(
            NAXIS=2,
            NAXIS1=8,
            NAXIS2=100,
            ZIMAGE=True,
            ZBITPIX=16,
            ZNAXIS=2,
            ZNAXIS1=30,
            ZNAXIS2=40,
            BITPIX=8,
        )
    ).meta
    assert meta.shape == (40, 30) and meta.dtype == "uint16"


def test_config_signature_separates_configurations():
    a = norm(base(GAIN=100, OFFSET=50)).meta
    assert norm(base(GAIN=100, OFFSET=50, EXPTIME=300.0)).meta.config_signature == (
        a.config_signature
    )
    for change in ({"GAIN": 0}, {"OFFSET": 10}, {"XBINNING": 2}, {"READOUTM": "Fast"}):
        assert norm(base(**{"GAIN": 100, "OFFSET": 50, **change})).meta.config_signature != (
            a.config_signature
        )


def test_parse_number():
    assert parse_number("6.00000000000E+001") == (60.0, "ok")
    assert parse_number(7) == (7.0, "ok")
    assert parse_number(None) == (None, "absent")
    assert parse_number("  ") == (None, "absent")
    assert parse_number(-1.79769313486232e308) == (None, "absent")
    assert parse_number(math.nan) == (None, "invalid")
    assert parse_number(True) == (None, "invalid")
    assert parse_number("1_000") == (None, "invalid")
    assert parse_number([1]) == (None, "invalid")
    assert parse_number(10**400) == (None, "absent")


def test_eligibility_of():
    assert eligibility_of([]) == Eligibility.ELIGIBLE
    assert eligibility_of([R.MISSING_TEMPERATURE]) == Eligibility.ISOLATED
    assert eligibility_of([R.MISSING_TEMPERATURE, R.TRUNCATED]) == Eligibility.REJECTED


def test_non_mapping_header_counts_as_empty():
    result = normalise(None, "/x.fits")
    assert result.eligibility == "rejected"
    assert R.MISSING_EXPOSURE in result.reasons


# --------------------------------------------------------------------------- docs in step
def test_every_reason_is_in_the_docs_table_with_its_consequence():
    text = DOCS.read_text()
    for reason in IngestReason:
        assert re.search(rf"\| `{reason.value}` \| {reason.consequence} \|", text), reason
        assert reason.description


def test_every_keyword_alias_is_in_the_docs():
    text = DOCS.read_text()
    keywords = {k for keys in kw.FIELD_KEYWORDS.values() for k in keys}
    keywords |= set(kw.PROGRAM_KEYWORDS) | set(kw.CALIBRATED_KEYWORDS)
    keywords |= set(kw.STACK_COUNT_KEYWORDS) | {"EGAINSAV", "ADCBITS"}
    missing = sorted(k for k in keywords if f"`{k}`" not in text)
    assert not missing


# --------------------------------------------------------------------------- fuzz
_KEYS = sorted(
    {k for keys in kw.FIELD_KEYWORDS.values() for k in keys}
    | set(kw.PROGRAM_KEYWORDS)
    | set(kw.CALIBRATED_KEYWORDS)
    | set(kw.STACK_COUNT_KEYWORDS)
    | {"BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BZERO", "BSCALE", "ZIMAGE", "ZNAXIS", "HISTORY"}
    | {"COMMENT", "EGAINSAV", "ADCBITS", "ZNAXIS1", "ZNAXIS2", "ZBITPIX"}
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "6.00000000000E+001",
            "-1.79769313486232E+308",
            "NaN",
            "inf",
            "Light Frame",
            "2*2",
            "2024-05-30T00:22:49.0968820",
            "04/07/98",
            "  DARK  ",
            "RGGB",
            "SharpCap",
            "1,5",
            "149 03 52",
            "-68:10:48:00",
            "",
            "'",
            "T",
        ]
    ),
    st.lists(st.text(max_size=10), max_size=3),
    st.datetimes(),
    st.complex_numbers(allow_nan=True),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=12)), _VALUES),
    path=st.text(max_size=60),
    gain_keyword=st.sampled_from(["auto", "setting", "e_per_adu"]),
)
def test_normalise_never_raises(header, path, gain_keyword):
    result = normalise(header, path, config=IngestConfig(gain_keyword=gain_keyword))
    assert isinstance(result, NormalisedHeader)
    assert isinstance(result.meta, FrameMeta)
    assert result.eligibility == eligibility_of(result.reasons)
    m = result.meta
    for value in (m.exptime_s, m.ccd_temp_c, m.set_temp_c, m.gain_setting, m.offset):
        assert value is None or math.isfinite(value)
    assert isinstance(m.xbin, int) and m.xbin >= 1
    assert m.date_obs_utc is None or m.date_obs_utc.tzinfo is not None
    assert isinstance(m.config_signature, str)
    if m.exptime_s is None:
        assert result.eligibility == "rejected"


@settings(max_examples=150, deadline=None)
@given(
    cards=st.lists(
        st.tuples(
            st.sampled_from(_KEYS[:60]),
            st.one_of(
                st.integers(-(10**12), 10**12),
                st.floats(allow_nan=False, allow_infinity=False, width=32),
                st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
                st.booleans(),
            ),
        ),
        max_size=25,
    )
)
def test_normalise_never_raises_on_astropy_headers(cards):
    header = fits.Header()
    for key, value in cards:
        if key in ("HISTORY", "COMMENT"):
            continue
        header[key] = value
    result = normalise(header, "/fuzz/frame.fits")
    assert result.eligibility == eligibility_of(result.reasons)
