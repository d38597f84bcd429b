"""TF Serving's on-disk layout: numeric version directories, the files it reads in one, path prefixes."""

from pathlib import Path

SAVED_MODEL_FILE = "saved_model.pb"
TFLITE_FILE = "model.tflite"  # what TF Serving serves instead under --prefer_tflite_model
ASSETS_EXTRA_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"  # PredictionLog records TF Serving replays before serving
MODEL_CARD_FILE = "model_card.json"


def list_versions(base_path: str | Path) -> dict[int, Path]:
    """Numeric child directories of `base_path` by version (`00000123` is 123); other names are ignored.

    TF Serving's FileSystemStoragePathSource does the same, so a non-numeric staging directory is never
    served. A missing or unreadable base path has no versions.
    """
    try:
        children = list(Path(base_path).iterdir())
    except OSError:
        return {}
    return {int(child.name): child for child in children if child.name.isdigit() and child.is_dir()}


def with_prefix(base_path: str, storage_path_prefix: str = "") -> str:
    """`base_path` under `storage_path_prefix`, as ServerCore::Options::storage_path_prefix applies it."""
    if not storage_path_prefix:
        return base_path
    return storage_path_prefix.rstrip("/") + "/" + base_path.lstrip("/")


def warmup_path(version_dir: str | Path) -> Path:
    """`<version>/assets.extra/tf_serving_warmup_requests`."""
    return Path(version_dir) / ASSETS_EXTRA_DIR / WARMUP_FILE


def model_card_path(version_dir: str | Path) -> Path:
    """`<version>/assets.extra/model_card.json`."""
    return Path(version_dir) / ASSETS_EXTRA_DIR / MODEL_CARD_FILE


def tflite_path(version_dir: str | Path) -> Path:
    """`<version>/model.tflite` (it may not exist)."""
    return Path(version_dir) / TFLITE_FILE
