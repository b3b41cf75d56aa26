"""IDX reader/writer: byte-level references, round trips over every dtype, and corrupt files."""
from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from regularkit.data.idx import IDX_DTYPES, encode_idx, parse_idx, read_idx, write_idx
from regularkit.errors import RegularkitError

NATIVE_DTYPES = [dt.newbyteorder("=") for dt in IDX_DTYPES.values()]


def idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file written by hand from the format description (the reference)."""
    head = bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return head + payload


# ---------------------------------------------------------------- references

def test_parse_matches_hand_written_bytes():
    data = idx_bytes(0x08, (2, 3), bytes([0, 1, 2, 253, 254, 255]))
    out = parse_idx(data)
    assert out.dtype == np.uint8 and out.shape == (2, 3)
    assert out.tolist() == [[0, 1, 2], [253, 254, 255]]


def test_multibyte_values_are_big_endian_on_disk():
    # 0x0102 = 258 and -2 = 0xFFFE as big-endian int16
    data = idx_bytes(0x0B, (2,), bytes([0x01, 0x02, 0xFF, 0xFE]))
    out = parse_idx(data)
    assert out.tolist() == [258, -2]
    assert out.dtype == np.dtype("int16") and out.dtype.isnative
    assert encode_idx(np.array([258, -2], dtype=np.int16)) == data


def test_float64_reference():
    data = idx_bytes(0x0E, (1,), np.array([1.5], dtype=">f8").tobytes())
    assert parse_idx(data).tolist() == [1.5]


def test_parsed_array_is_writable_and_owns_its_memory():
    out = parse_idx(idx_bytes(0x08, (3,), b"\x01\x02\x03"))
    out[0] = 9
    assert out.flags.owndata or out.base.flags.owndata


# ---------------------------------------------------------------- round trips

@st.composite
def idx_arrays(draw):
    dtype = draw(st.sampled_from(NATIVE_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
    return draw(hnp.arrays(dtype, shape))


@settings(max_examples=60, deadline=None)
@given(idx_arrays())
def test_encode_parse_round_trip(array):
    out = parse_idx(encode_idx(array))
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes() == array.tobytes()  # bit-exact, NaN payloads and -0.0 included


@settings(max_examples=25, deadline=None)
@given(idx_arrays(), st.booleans())
def test_file_round_trip_gzip_and_raw(array, compress):
    with tempfile.TemporaryDirectory() as d:
        path = write_idx(Path(d) / "a.idx", array, gzip=compress)
        assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
        out = read_idx(path)
        assert sorted(p.name for p in Path(d).iterdir()) == ["a.idx"]  # no temp file left
    assert out.dtype == array.dtype and out.tobytes() == array.tobytes()


def test_big_endian_input_array_round_trips():
    a = np.arange(12, dtype=">f4").reshape(3, 4)
    out = parse_idx(encode_idx(a))
    assert out.dtype.isnative and np.array_equal(out, a)


def test_gzip_detected_by_magic_bytes_not_name(tmp_path):
    a = np.arange(10, dtype=np.int32)
    write_idx(tmp_path / "compressed.raw", a, gzip=True)
    write_idx(tmp_path / "plain.gz", a, gzip=False)
    assert np.array_equal(read_idx(tmp_path / "compressed.raw"), a)
    assert np.array_equal(read_idx(tmp_path / "plain.gz"), a)


def test_write_is_deterministic_and_overwrites(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    one = write_idx(tmp_path / "x.gz", a).read_bytes()
    write_idx(tmp_path / "x.gz", np.zeros(3, np.uint8))
    assert read_idx(tmp_path / "x.gz").tolist() == [0, 0, 0]
    assert write_idx(tmp_path / "x.gz", a).read_bytes() == one  # gzip mtime fixed at 0


def test_write_rejects_unsupported_dtype_and_scalars(tmp_path):
    with pytest.raises(RegularkitError, match=r"IDX cannot store dtype int64; cast to one of uint8"):
        write_idx(tmp_path / "y.gz", np.arange(3))
    with pytest.raises(RegularkitError, match=r"IDX cannot store dtype bool"):
        write_idx(tmp_path / "y.gz", np.ones(3, bool))
    with pytest.raises(RegularkitError, match=r"1 to 255 dimensions, got an array of shape \(\)"):
        write_idx(tmp_path / "y.gz", np.float32(1.0))
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- corrupt files

def write_raw(tmp_path: Path, data: bytes, name: str = "bad.idx") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", r"only 2 bytes \(the header alone needs 4\)"),
    (b"\x01\x00\x08\x01" + bytes(8), r"bad magic number 0x01000801 \(must start with 00 00\)"),
    (b"\x00\x00\x0a\x01" + bytes(8), r"unknown IDX type code 0x0A \(known: 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E\)"),
    (b"\x00\x00\x08\x00", r"0 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", r"truncated IDX header, 2 dimensions need 12 bytes, got 8"),
    (b"\x00\x00\x08\x01\xff\xff\xff\xff", r"negative size in IDX shape \(-1,\)"),
    (idx_bytes(0x0C, (3,), bytes(11)), r"truncated IDX payload, shape \(3,\) of int32 needs 12 bytes, got 11"),
    (idx_bytes(0x08, (2, 2), bytes(7)), r"3 unexpected trailing bytes .* needs 4 bytes, got 7"),
])
def test_corrupt_raw_files_name_the_path_and_the_problem(tmp_path, data, message):
    path = write_raw(tmp_path, data)
    with pytest.raises(RegularkitError, match=rf"^{tmp_path}/bad\.idx: .*{message}"):
        read_idx(path)


def test_truncated_payload_inside_valid_gzip(tmp_path):
    path = write_raw(tmp_path, gzip.compress(idx_bytes(0x08, (10,), bytes(9))), "cut.gz")
    with pytest.raises(RegularkitError, match=r"cut\.gz: truncated IDX payload.*needs 10 bytes, got 9"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    good = gzip.compress(encode_idx(np.arange(1000, dtype=np.int32)))
    path = write_raw(tmp_path, good[: len(good) // 2], "half.gz")
    with pytest.raises(RegularkitError, match=rf"^corrupt gzip file {tmp_path}/half\.gz: "):
        read_idx(path)


def test_gzip_with_bad_crc(tmp_path):
    good = bytearray(gzip.compress(encode_idx(np.arange(50, dtype=np.uint8))))
    good[-8] ^= 0xFF  # the CRC32 sits in the 8-byte trailer
    path = write_raw(tmp_path, bytes(good), "crc.gz")
    with pytest.raises(RegularkitError, match=r"corrupt gzip file .*crc\.gz: CRC check failed"):
        read_idx(path)


def test_garbage_after_gzip_stream(tmp_path):
    data = gzip.compress(encode_idx(np.arange(5, dtype=np.uint8))) + b"garbage!"
    with pytest.raises(RegularkitError, match=r"corrupt gzip file .*tail\.gz"):
        read_idx(write_raw(tmp_path, data, "tail.gz"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RegularkitError, match=rf"IDX file not found: {tmp_path}/nope\.gz"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(RegularkitError, match=rf"cannot read IDX file {tmp_path}"):
        read_idx(tmp_path)
