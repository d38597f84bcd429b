"""Export a trained Keras model as a TF Serving SavedModel version, atomically."""

import argparse
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from contract import layout, mnist, tflite_signatures

STAGING_PREFIX = ".staging-"  # non-numeric, so TF Serving never serves a version being written


class VersionExistsError(FileExistsError):
    """The target version directory already exists; versions are never overwritten."""


def next_version(model_dir: Path) -> int:
    """One more than the highest existing version (1 for an empty directory)."""
    return max(layout.list_versions(model_dir), default=0) + 1


def version_size_bytes(version_dir: Path) -> int:
    """The model card's `size_bytes`: every file of the version but the card itself."""
    card = layout.model_card_path(version_dir)
    return sum(p.stat().st_size for p in Path(version_dir).rglob("*") if p.is_file() and p != card)


def write_saved_model(model: keras.Model, target: Path, judge=None, temperature: float = 1.0) -> None:
    """Write `model` ([n, 11] out: training/model.py) with its two signatures, calibration and judgement.

    `serving_default`: image -> probabilities (softmax of logits / `temperature`), digit, and with a
    `judge` (training/judgement.py) digit_score and is_digit. `explain`: image -> attribution, digit.
    """
    from training.explain import integrated_gradients
    from training.model import split_outputs

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(image):
        logits, detector = split_outputs(model(image, training=False))
        outputs = {
            mnist.PROBABILITIES_KEY: tf.nn.softmax(logits / temperature),
            mnist.DIGIT_KEY: tf.argmax(logits, axis=-1, output_type=tf.int64),
        }
        if judge is not None:
            score = judge.score(detector)
            outputs[mnist.DIGIT_SCORE_KEY] = score
            outputs[mnist.IS_DIGIT_KEY] = score >= mnist.DIGIT_SCORE_CUT
        return outputs

    def explain(image):
        attribution, digit = integrated_gradients(lambda x: split_outputs(model(x, training=False))[0], image)
        return {mnist.ATTRIBUTION_KEY: attribution, mnist.DIGIT_KEY: digit}

    spec = tf.TensorSpec([None, *mnist.INPUT_SHAPE], tf.float32, name=mnist.INPUT_KEY)
    archive.add_endpoint(mnist.SIGNATURE_NAME, serve, input_signature=[spec])
    archive.add_endpoint(mnist.EXPLAIN_SIGNATURE_NAME, explain, input_signature=[spec])
    archive.write_out(str(target), verbose=False)


def write_tflite(saved_model_dir: Path) -> Path:
    """Convert the SavedModel's `serving_default` to `<dir>/model.tflite`, float32 and unquantized.

    Only that signature: TFLite has no kernels for the gradient ops `explain` needs (ReluGrad,
    MaxPoolGrad), so TF Serving serves `explain` from the SavedModel, with --prefer_tflite_model off.

    Only for a directory being built: a published version is never written into (see `publish_with_tflite`).
    """
    # TF Serving serves this file instead of saved_model.pb under --prefer_tflite_model.
    saved_model_dir = Path(saved_model_dir)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[mnist.SIGNATURE_NAME]
    )
    converted = converter.convert()
    target = layout.tflite_path(saved_model_dir)
    target.write_bytes(_with_signature_defs(converted, _saved_model_signatures(saved_model_dir)))
    return target


def _saved_model_signatures(saved_model_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    path = Path(saved_model_dir) / layout.SAVED_MODEL_FILE
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    graph = next(g for g in saved_model.meta_graphs if tf.saved_model.SERVING in g.meta_info_def.tags)
    return dict(graph.signature_def)


def _with_signature_defs(content: bytes, signature_defs: dict[str, meta_graph_pb2.SignatureDef]) -> bytes:
    """`content` with the SavedModel's SignatureDefs, naming TFLite tensors, where TF Serving reads them.

    Without the "signature_defs_metadata" entry TF Serving makes up a signature whose aliases are tensor
    names ("serving_default_image"), which no client of the SavedModel would send.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
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
    return tflite_signatures.with_signature_defs(content, serialized)


def publish(staging: Path, model_dir: Path, version: int | None = None) -> Path:
    """Rename a complete `staging` directory to `<model_dir>/<version>` (default: the next one)."""
    version = version if version is not None else next_version(model_dir)
    target = Path(model_dir) / str(version)
    # os.rename would silently replace an empty directory; refuse any existing target instead.
    if target.exists():
        raise VersionExistsError(f"{target} exists; versions are never overwritten")
    os.rename(staging, target)
    return target


def new_staging_dir(model_dir: Path) -> Path:
    """A fresh, not yet existing staging path next to the versions."""
    return Path(model_dir) / f"{STAGING_PREFIX}{uuid.uuid4().hex}"


def export_model(
    model: keras.Model,
    model_dir: Path,
    annotate: Callable[[Path], None] | None = None,
    version: int | None = None,
    judge=None,
    temperature: float = 1.0,
) -> Path:
    """Export to a staging directory, let `annotate` add files, and rename to `<model_dir>/<N>`.

    TF Serving ignores non-numeric children, so the staging directory is never served half-written.
    `annotate(staging_dir)` runs before the rename, so a model card can describe the exact export.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = new_staging_dir(model_dir)
    try:
        write_saved_model(model, staging, judge, temperature)
        write_tflite(staging)
        (staging / layout.ASSETS_EXTRA_DIR).mkdir(exist_ok=True)
        if annotate is not None:
            annotate(staging)
        return publish(staging, model_dir, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_with_tflite(version_dir: Path) -> Path:
    """Publish a copy of `version_dir` with a model.tflite as the next version; `version_dir` is untouched.

    Published versions are immutable, so a version exported without model.tflite gets a successor
    instead: copied to a staging directory, converted, its model card's `size_bytes` brought up to date
    (and `published_from_version` set), then renamed to `<highest + 1>`.
    """
    version_dir = Path(version_dir)
    if not (version_dir / layout.SAVED_MODEL_FILE).is_file():
        raise FileNotFoundError(f"{version_dir} has no {layout.SAVED_MODEL_FILE}")
    if layout.tflite_path(version_dir).exists():
        raise ValueError(f"{version_dir} already has {layout.TFLITE_FILE}; nothing to publish")
    model_dir = version_dir.parent
    staging = new_staging_dir(model_dir)
    try:
        shutil.copytree(version_dir, staging)
        write_tflite(staging)
        card_path = layout.model_card_path(staging)
        if card_path.is_file():
            card = json.loads(card_path.read_text())
            card["size_bytes"] = version_size_bytes(staging)
            if version_dir.name.isdigit():
                card["published_from_version"] = int(version_dir.name)
            card_path.write_text(json.dumps(card, indent=2) + "\n")
        return publish(staging, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str]) -> int:
    """`python -m training.export <version dir>`: publish a copy with model.tflite as the next version."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("version_dir", type=Path, help="a published SavedModel version without model.tflite")
    version_dir = parser.parse_args(argv).version_dir
    try:
        target = publish_with_tflite(version_dir)
    except (OSError, ValueError) as exc:  # a missing or complete source, an unwritable model dir
        print(f"export: {exc}", file=sys.stderr)
        return 1
    print(f"published {target} (= {version_dir} + {layout.TFLITE_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
