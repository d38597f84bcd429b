"""The IDX reader accepts well-formed files and rejects every kind of corrupt one."""

import gzip
import struct

import numpy as np
import pytest

from training.idx import IdxFormatError, parse_idx, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_images_round_trip():
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 256
    parsed = parse_idx(idx_bytes(images))
    assert parsed.shape == (3, 28, 28)
    np.testing.assert_array_equal(parsed, images)


def test_labels_round_trip():
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


def test_gzip_file_is_read(tmp_path):
    labels = np.array([7, 2, 1], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "bad magic"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4, "not unsigned byte"),
        (bytes([0, 0, 8, 0]), "zero dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated header"),
    ],
    ids=["empty", "two-bytes", "png-magic", "float-type", "zero-dims", "short-header"],
)
def test_corrupt_header_is_rejected(payload, message):
    with pytest.raises(IdxFormatError, match=message):
        parse_idx(payload)


def test_truncated_body_is_rejected():
    payload = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="truncated or corrupt"):
        parse_idx(payload[:-1])


def test_trailing_garbage_is_rejected():
    payload = idx_bytes(np.zeros((2, 4), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="truncated or corrupt"):
        parse_idx(payload + b"\x00")


def test_corrupt_gzip_is_rejected(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05hello")[:-6])
    with pytest.raises(IdxFormatError, match="corrupt gzip"):
        read_idx(path)
