"""One FITS header walker: the catalog's header-only read (``io.fastheader``) and the combine's
band reader (``io.bands``) agree on where a header ends, the stored dtype and broken files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from darkflow.exceptions import FitsReadError
from darkflow.io.bands import FrameSource
from darkflow.io.fastheader import BLOCK, MAX_HEADER_BLOCKS, FitsHeaderError, read_header_info


def both(path):
    """(dtype, shape, header) as the scan sees the file, and the band reader's layout."""
    info = read_header_info(path)
    assert info.error is None, info.error_detail
    with FrameSource(path) as src:
        lay = src.layout
        values = np.empty(lay.shape, np.float64)
        src.read_rows(0, lay.shape[0], values)
    return info, lay, values


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (np.array([[-128, -1], [0, 127]], np.int8), "int8"),  # BITPIX 8, BZERO -128
        (np.array([[0, 1], [32768, 65535]], np.uint16), "uint16"),  # BITPIX 16, BZERO 32768
        (np.array([[0, 1], [128, 255]], np.uint8), "uint8"),
        (np.array([[-5, 1], [3, 7]], np.int16), "int16"),
    ],
)
def test_both_walkers_give_astropys_dtype_and_values(tmp_path, data, dtype):
    path = tmp_path / "f.fits"
    fits.PrimaryHDU(data).writeto(path)
    with fits.open(path) as hdul:
        assert hdul[0].data.dtype.name == dtype  # the truth: astropy's reading
    info, lay, values = both(path)
    assert info.dtype == lay.stored_dtype == dtype
    assert info.shape == lay.shape == data.shape
    np.testing.assert_array_equal(values, data.astype(np.float64))


def test_a_header_of_several_blocks_ends_at_the_same_byte(tmp_path):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4)
    hdu = fits.ImageHDU(data)
    for i in range(150):  # ~5 blocks of header
        hdu.header.add_history(f"step {i}")
    path = tmp_path / "long.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path) as hdul:
        offset = hdul[1].fileinfo()["datLoc"]
    assert offset > 4 * BLOCK
    info, lay, values = both(path)
    assert info.hdu_index == lay.hdu_index == 1
    assert lay.data_offset == offset and info.data_end == offset + data.nbytes
    assert len(info.header.history) == 150
    np.testing.assert_array_equal(values, data)


def _cards(*cards: str) -> bytes:
    return b"".join(c.ljust(80).encode() for c in cards)


def _file(header: bytes, nblocks_data: int = 1) -> bytes:
    header = header.ljust(-(-len(header) // BLOCK) * BLOCK, b" ")
    return header + b"\0" * (BLOCK * nblocks_data)


SIMPLE = (
    "SIMPLE  =                    T",
    "BITPIX  =                   16",
    "NAXIS   =                    2",
    "NAXIS1  =                    4",
    "NAXIS2  =                    3",
)


def test_an_end_card_with_text_after_the_keyword_ends_the_header_for_both(tmp_path):
    path = tmp_path / "end.fits"
    path.write_bytes(_file(_cards(*SIMPLE, "END     junk after the keyword", "OBJECT  = 'x'")))
    info, lay, _ = both(path)
    assert "OBJECT" not in info.header and "OBJECT" not in lay.header
    assert lay.data_offset == BLOCK


def test_a_missing_end_card_is_a_named_error_for_both(tmp_path):
    path = tmp_path / "noend.fits"
    path.write_bytes(_cards(*SIMPLE).ljust(BLOCK, b" "))  # one block, no END, nothing after
    assert read_header_info(path).error == "truncated"
    with pytest.raises(FitsHeaderError, match="END") as err:
        FrameSource(path)
    assert err.value.code == "truncated" and err.value.path == str(path)
    assert isinstance(err.value, FitsReadError)


def test_no_end_within_the_block_limit_is_not_fits_for_both(tmp_path):
    path = tmp_path / "endless.fits"
    path.write_bytes(_cards(*SIMPLE).ljust(BLOCK * (MAX_HEADER_BLOCKS + 2), b" "))
    info = read_header_info(path)
    assert info.error == "not_fits" and str(MAX_HEADER_BLOCKS) in info.error_detail
    with pytest.raises(FitsHeaderError, match=str(MAX_HEADER_BLOCKS)) as err:
        FrameSource(path)
    assert err.value.code == "not_fits"
