"""Export a trained Keras model as a TF Serving SavedModel version, atomically."""

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from contract import mnist


class VersionExistsError(FileExistsError):
    """The target version directory already exists; versions are never overwritten."""


def existing_versions(model_dir: Path) -> list[int]:
    """Numeric version directories under `model_dir`, as TF Serving sees them, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: Path) -> int:
    """One more than the highest existing version (1 for an empty directory)."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def write_saved_model(model: keras.Model, target: Path) -> None:
    """Write `model` with a `serving_default` signature: image -> probabilities, digit."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(image):
        probabilities = model(image, training=False)
        return {
            mnist.PROBABILITIES_KEY: probabilities,
            mnist.DIGIT_KEY: tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }

    spec = tf.TensorSpec([None, *mnist.INPUT_SHAPE], tf.float32, name=mnist.INPUT_KEY)
    archive.add_endpoint(mnist.SIGNATURE_NAME, serve, input_signature=[spec])
    archive.write_out(str(target), verbose=False)


def export_model(
    model: keras.Model,
    model_dir: Path,
    annotate: Callable[[Path], None] | None = None,
    version: int | None = None,
) -> Path:
    """Export to a staging directory, let `annotate` add files, and rename to `<model_dir>/<N>`.

    TF Serving ignores non-numeric children, so the staging directory is never served half-written.
    `annotate(staging_dir)` runs before the rename, so a model card can describe the exact export.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{uuid.uuid4().hex}"
    try:
        write_saved_model(model, staging)
        (staging / "assets.extra").mkdir(exist_ok=True)
        if annotate is not None:
            annotate(staging)
        version = version if version is not None else next_version(model_dir)
        target = model_dir / str(version)
        # os.rename would silently replace an empty directory; refuse any existing target instead.
        if target.exists():
            raise VersionExistsError(f"{target} exists; versions are never overwritten")
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
