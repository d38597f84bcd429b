"""Reader for the IDX file format used by the original MNIST files, with strict validation."""

import gzip
from pathlib import Path

import numpy as np

# IDX magic: two zero bytes, a type code, then the number of dimensions.
_UBYTE_TYPE = 0x08
_HEADER_PREFIX = b"\x00\x00"


class IdxFormatError(ValueError):
    """An IDX file is truncated, corrupt, or not of the expected shape."""


def parse_idx(payload: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Parse unsigned-byte IDX bytes into an array, checking magic, dimensions and byte count."""
    if len(payload) < 4:
        raise IdxFormatError(f"{name}: {len(payload)} bytes is too short for an IDX header")
    if payload[:2] != _HEADER_PREFIX:
        raise IdxFormatError(f"{name}: bad magic number {payload[:4].hex()} (not an IDX file)")
    type_code, ndim = payload[2], payload[3]
    if type_code != _UBYTE_TYPE:
        raise IdxFormatError(f"{name}: data type 0x{type_code:02x} is not unsigned byte (0x08)")
    if ndim == 0:
        raise IdxFormatError(f"{name}: zero dimensions")
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise IdxFormatError(f"{name}: truncated header ({len(payload)} of {header_len} bytes)")
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_len + int(np.prod(shape, dtype=np.int64))
    if len(payload) != expected:
        raise IdxFormatError(
            f"{name}: {len(payload)} bytes but dimensions {shape} need {expected} (truncated or corrupt file)"
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_len).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) from disk."""
    path = Path(path)
    payload = path.read_bytes()
    if payload[:2] == b"\x1f\x8b":
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError) as exc:
            raise IdxFormatError(f"{path}: corrupt gzip stream: {exc}") from exc
    return parse_idx(payload, name=str(path))
