"""The IDX file format of MNIST and Fashion-MNIST: a strict reader and an atomic writer.

Format (LeCun, Cortes and Burges, "THE MNIST DATABASE of handwritten digits",
http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``00 00 TT DD``
where ``TT`` is the element type and ``DD`` the number of dimensions, then
``DD`` big-endian 32-bit sizes, then the elements in C order, big-endian.
The files are usually gzip-compressed.

The reader is strict on purpose: a truncated download or a file with trailing
bytes is reported with the path and the byte counts, never silently reshaped.
``parse_idx``/``encode_idx`` are the pure kernels on bytes; ``read_idx`` and
``write_idx`` add files, gzip and error messages that name the path.
"""
from __future__ import annotations

import gzip as _gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from regularkit._util.io import atomic_write_bytes
from regularkit.errors import RegularkitError

__all__ = ["IDX_DTYPES", "parse_idx", "encode_idx", "read_idx", "write_idx"]

#: IDX type code -> NumPy dtype (big-endian on disk, as the format requires).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Keyed by the native-order dtype, so that any byte order of the same kind maps back.
_CODE_OF = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**31 - 1  # sizes are signed 32-bit in every reader we know of


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX ``data`` into a native-byte-order array.

    ``source`` is only used in error messages (a path, usually).
    """
    if len(data) < 4:
        raise RegularkitError(f"{source}: not an IDX file, only {len(data)} bytes (the header alone needs 4)")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise RegularkitError(
            f"{source}: not an IDX file, bad magic number 0x{data[:4].hex()} (must start with 00 00)")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise RegularkitError(f"{source}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim < 1:
        raise RegularkitError(f"{source}: IDX header says 0 dimensions; at least 1 is needed")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise RegularkitError(
            f"{source}: truncated IDX header, {ndim} dimensions need {header_len} bytes, got {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise RegularkitError(f"{source}: negative size in IDX shape {shape}")
    dtype = IDX_DTYPES[code]
    # Python ints: the product cannot overflow, and we compare before allocating anything.
    expected = math.prod(shape) * dtype.itemsize
    got = len(data) - header_len
    if got < expected:
        raise RegularkitError(
            f"{source}: truncated IDX payload, shape {shape} of {dtype.newbyteorder('=').name} "
            f"needs {expected} bytes, got {got}")
    if got > expected:
        raise RegularkitError(
            f"{source}: {got - expected} unexpected trailing bytes after the IDX payload "
            f"(shape {shape} needs {expected} bytes, got {got})")
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_len)
    # astype copies: the result is writable, native-endian and owns its memory.
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as uncompressed IDX bytes (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    code = _CODE_OF.get(array.dtype.newbyteorder("="))
    if code is None:
        known = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise RegularkitError(
            f"IDX cannot store dtype {array.dtype.name}; cast to one of {known} first")
    if not 1 <= array.ndim <= 255:
        raise RegularkitError(f"IDX stores 1 to 255 dimensions, got an array of shape {array.shape}")
    if any(d > _MAX_DIM for d in array.shape):
        raise RegularkitError(f"IDX sizes must fit in 32 bits, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a native-byte-order NumPy array.

    Compression is detected from the gzip magic bytes ``1f 8b``, not from the
    file name, so a decompressed file keeping its ``.gz`` name still reads.
    Every failure (missing file, corrupt gzip, bad header, wrong payload size)
    raises :class:`RegularkitError` naming ``path``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RegularkitError(f"IDX file not found: {path}") from None
    except OSError as exc:  # a directory, no permission, ...
        raise RegularkitError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = _gzip.decompress(raw)
        # BadGzipFile (bad CRC, bad header) is an OSError; a cut stream raises EOFError.
        except (OSError, EOFError, zlib.error) as exc:
            raise RegularkitError(f"corrupt gzip file {path}: {exc}") from None
    return parse_idx(raw, source=str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, gzip: bool = True) -> Path:
    """Write ``array`` to ``path`` as IDX, gzip-compressed unless ``gzip=False``.

    The write is atomic (temporary file, then ``os.replace``): readers never
    see a half-written file.  ``mtime=0`` in the gzip header keeps the output
    byte-identical for identical arrays, so checksums are reproducible.
    """
    data = encode_idx(array)
    if gzip:
        data = _gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, data)
