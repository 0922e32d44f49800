import os
import stat

import numpy as np
import pytest
from astropy.io import fits

from darkflow.exceptions import FitsReadError, OutputError
from darkflow.io import atomic_write, read_image, remove_stale_temporaries, write_image
from darkflow.io.atomic import atomic_path


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_output_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputError):
            write_image(ro / "x.fits", np.zeros((2, 2), np.float32))
    finally:
        ro.chmod(stat.S_IRWXU)


def test_full_disk_is_output_error(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fits.HDUList, "writeto", no_space)
    with pytest.raises(OutputError, match="No space left"):
        write_image(tmp_path / "x.fits", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_unsigned_16_bit_is_kept_unsigned(tmp_path):
    data = np.array([[0, 1], [32768, 65535]], dtype=np.uint16)
    fits.PrimaryHDU(data).writeto(tmp_path / "u16.fits")
    header = fits.getheader(tmp_path / "u16.fits")
    assert header["BITPIX"] == 16 and header["BZERO"] == 32768
    out, _ = read_image(tmp_path / "u16.fits")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, data)
    as_float, _ = read_image(tmp_path / "u16.fits", dtype="float32")
    assert as_float.max() == 65535.0


def test_float_output_drops_integer_scaling(tmp_path):
    header = fits.Header({"BZERO": 32768, "BSCALE": 1, "EXPTIME": 60.0})
    write_image(tmp_path / "f.fits", np.full((2, 2), -5.0, np.float32), header)
    with fits.open(tmp_path / "f.fits") as hdul:
        assert "BZERO" not in hdul[0].header
        assert hdul[0].header["EXPTIME"] == 60.0
        assert hdul[0].data.dtype.kind == "f" and hdul[0].data[0, 0] == -5.0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "unreadable"),
        (b"SIMPLE  = T" + b" " * 100, "unreadable"),
        (b"not a fits file" * 300, "unreadable"),
    ],
)
def test_bad_files_are_fits_read_errors(tmp_path, content, match):
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(FitsReadError, match=match):
        read_image(path)


def test_truncated_file_is_error(tmp_path):
    fits.PrimaryHDU(np.zeros((64, 64), np.uint16)).writeto(tmp_path / "ok.fits")
    raw = (tmp_path / "ok.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FitsReadError, match="truncated"):
        read_image(tmp_path / "cut.fits")
    with pytest.raises(FitsReadError, match="not found"):
        read_image(tmp_path / "missing.fits")


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".master.fits.999999.abcd1234.tmp"
    dead.write_text("x")
    alive = tmp_path / f".other.fits.{os.getpid()}.abcd1234.tmp"
    alive.write_text("x")
    assert remove_stale_temporaries(tmp_path, is_alive=lambda pid: pid == os.getpid()) == 1
    assert not dead.exists() and alive.exists()


def test_read_only_filesystem_is_output_error(tmp_path, monkeypatch):
    """EROFS at the rename (the last step): OutputError, and the temporary is cleaned up."""
    import darkflow.io.atomic as atomic

    def read_only(src, dst):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(atomic.os, "replace", read_only)
    with pytest.raises(OutputError, match="Read-only"):
        write_image(tmp_path / "x.fits", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_written_hook_hashes_the_file_while_it_is_synced(tmp_path):
    from darkflow.io.hashing import file_hash, hash_in_background

    target = tmp_path / "out.bin"
    payload = bytes(range(256)) * 9000  # more than one read chunk
    waits = []
    with atomic_path(target, written=lambda tmp: waits.append(hash_in_background(tmp))) as tmp:
        tmp.write_bytes(payload)
    assert len(waits) == 1
    assert waits[0]() == file_hash(target)
    assert target.read_bytes() == payload


def test_hash_in_background_hands_over_the_error(tmp_path, monkeypatch):
    import darkflow.io.hashing as hashing

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")

    def broken(fh):
        raise OSError("read failed")

    monkeypatch.setattr(hashing, "_hash_open", broken)
    wait = hashing.hash_in_background(path)
    with pytest.raises(OSError, match="read failed"):
        wait()
