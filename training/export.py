"""Export a trained Keras model as a TF Serving SavedModel version, atomically."""

import argparse
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils

from contract import mnist

TFLITE_FILE = "model.tflite"  # the name TF Serving looks for in a version directory
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # tflite::kSignatureDefsMetadataName


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


def write_tflite(saved_model_dir: Path) -> Path:
    """Convert the SavedModel to `<dir>/model.tflite`, float32 and unquantized, signatures kept."""
    # TF Serving serves this file instead of saved_model.pb under --prefer_tflite_model.
    saved_model_dir = Path(saved_model_dir)
    converted = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert()
    target = saved_model_dir / TFLITE_FILE
    target.write_bytes(_with_signature_defs(converted, _saved_model_signatures(saved_model_dir)))
    return target


def _saved_model_signatures(saved_model_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    saved_model = saved_model_pb2.SavedModel.FromString((saved_model_dir / "saved_model.pb").read_bytes())
    graph = next(g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags)
    return dict(graph.signature_def)


def _with_signature_defs(content: bytes, signature_defs: dict[str, meta_graph_pb2.SignatureDef]) -> bytes:
    """`content` with the SignatureDefs TF Serving reads from a .tflite file, naming TFLite tensors.

    TF Serving's TfLiteSession takes a model's signatures from the "signature_defs_metadata" entry
    (tensorflow/lite/tools/signature/signature_def_util.cc: a FlexBuffer map of key -> serialized
    SignatureDef). The converter does not write it, and without it TF Serving makes up a signature whose
    aliases are tensor names ("serving_default_image"), which no client of the SavedModel would send.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "tf.lite.Interpreter will move to ai-edge-litert"
        interpreter = tf.lite.Interpreter(model_content=content)
    serialized = {}
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        definition = meta_graph_pb2.SignatureDef()
        definition.CopyFrom(signature_defs[key])
        for alias, detail in runner.get_input_details().items():
            definition.inputs[alias].name = detail["name"]
        for alias, detail in runner.get_output_details().items():
            definition.outputs[alias].name = detail["name"]
        serialized[key] = definition.SerializeToString()
        if b"\0" in serialized[key]:  # TF Serving reads the value as a C string
            raise ValueError(f"signature {key!r} serializes with a NUL byte; TF Serving would truncate it")
    builder = flexbuffers.Builder()
    with builder.Map():
        for key in sorted(serialized):
            builder.Key(key)
            # Builder.String() only takes text; a serialized proto is bytes, stored as a FlexBuffer
            # string like C++'s fbb.String(key, bytes) does.
            builder._WriteBlob(serialized[key], append_zero=True, type_=flexbuffers.Type.STRING)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = schema_fb.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Finish()), np.uint8)
    model.buffers.append(buffer)
    metadata = schema_fb.MetadataT()
    metadata.name = SIGNATURE_DEFS_METADATA
    metadata.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
        write_tflite(staging)
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


def main(argv: list[str]) -> int:
    """`python -m training.export <version dir>...`: add model.tflite to versions exported without one."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("version_dirs", nargs="+", type=Path, help="SavedModel version directories")
    for version_dir in parser.parse_args(argv).version_dirs:
        print(write_tflite(version_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
