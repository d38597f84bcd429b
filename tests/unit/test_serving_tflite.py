"""--prefer_tflite_model: model.tflite has TF Serving's signature metadata and answers like the SavedModel."""

import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from flatbuffers import flexbuffers

from contract import tflite_signatures
from contract.layout import TFLITE_FILE
from serving.model_server.servable import Servable
from serving.model_server.tflite import TfLiteModel, read_signature_defs
from tests.support.model_server import default_model_version_dir
from training.export import export_model, write_tflite
from training.model import build_model

DIGITS = np.random.default_rng(11).random((5, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory):
    """The committed version, with a model.tflite written now if the checkout has none yet."""
    source = default_model_version_dir()
    if (source / TFLITE_FILE).is_file():
        return source
    copy = tmp_path_factory.mktemp("tflite") / "1"
    shutil.copytree(source, copy)
    write_tflite(copy)
    return copy


@pytest.fixture(scope="module")
def saved_model_outputs(version_dir):
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(image=tf.constant(DIGITS)).items()}


def test_committed_version_has_a_tflite_model():
    assert (default_model_version_dir() / TFLITE_FILE).is_file()


def test_tflite_signature_metadata_matches_the_saved_model(version_dir):
    lite = read_signature_defs((version_dir / TFLITE_FILE).read_bytes())["serving_default"]
    saved = Servable("mnist", 1, version_dir).signature_defs["serving_default"]
    assert lite.method_name == saved.method_name == "tensorflow/serving/predict"
    for ours, theirs in ((lite.inputs, saved.inputs), (lite.outputs, saved.outputs)):
        assert set(ours) == set(theirs)
        for alias in ours:
            assert ours[alias].dtype == theirs[alias].dtype
            assert ours[alias].tensor_shape == theirs[alias].tensor_shape
    # TensorInfo names are the TFLite tensors TF Serving's TfLiteSession looks up.
    interpreter = Interpreter(model_path=str(version_dir / TFLITE_FILE))
    names = {d["name"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    assert {info.name for info in [*lite.inputs.values(), *lite.outputs.values()]} <= names


def test_servable_runs_the_tflite_model_with_the_saved_models_answers(version_dir, saved_model_outputs):
    servable = Servable("mnist", 1, version_dir, tflite_pools=2)
    servable.enable_tflite(servable.sample_inputs())
    assert servable._signatures["serving_default"].tflite
    for batch in (DIGITS, DIGITS[:1], DIGITS):  # the interpreter is resized both ways
        got = servable.predict("serving_default", {"image": batch})
        np.testing.assert_allclose(
            got["probabilities"], saved_model_outputs["probabilities"][: len(batch)], atol=1e-5
        )
        np.testing.assert_array_equal(got["digit"], saved_model_outputs["digit"][: len(batch)])
    only = servable.predict("", {"image": DIGITS}, ("probabilities",))
    assert list(only) == ["probabilities"]
    # GetModelMetadata reports the signature of the model that serves, as TF Serving does.
    assert servable.signature_defs["serving_default"].inputs["image"].name == "serving_default_image:0"


def test_without_the_flag_the_saved_model_serves(version_dir):
    servable = Servable("mnist", 1, version_dir)
    servable.enable_tflite(servable.sample_inputs())
    assert not servable._signatures["serving_default"].tflite


def test_interpreters_are_shared_safely_between_threads(version_dir, saved_model_outputs):
    model = TfLiteModel(version_dir / TFLITE_FILE, pools=2)
    failures = []

    def call(size: int) -> None:
        for _ in range(20):
            got = model.run("serving_default", {"image": DIGITS[:size]})
            if not np.allclose(got["probabilities"], saved_model_outputs["probabilities"][:size], atol=1e-5):
                failures.append(size)

    threads = [threading.Thread(target=call, args=(size,)) for size in (1, 2, 3, 4, 5, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []


def test_tflite_without_signature_metadata_is_not_served(version_dir, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(version_dir, copy)
    (copy / TFLITE_FILE).write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(copy)).convert())
    assert read_signature_defs((copy / TFLITE_FILE).read_bytes()) == {}
    servable = Servable("mnist", 1, copy, tflite_pools=1)
    servable.enable_tflite(servable.sample_inputs())
    assert not servable._signatures["serving_default"].tflite
    assert servable.predict("", {"image": DIGITS})["probabilities"].shape == (5, 10)


def test_a_tflite_model_that_answers_differently_is_not_served(version_dir, tmp_path):
    copy = tmp_path / "1"
    shutil.copytree(version_dir, copy)
    other = export_model(build_model(dense_units=8), tmp_path / "other", version=1)
    shutil.copy(other / TFLITE_FILE, copy / TFLITE_FILE)
    servable = Servable("mnist", 1, copy, tflite_pools=1)
    servable.enable_tflite(servable.sample_inputs())
    assert not servable._signatures["serving_default"].tflite


def test_export_writes_a_tflite_model_with_signature_metadata(tmp_path):
    target = export_model(build_model(dense_units=8), tmp_path, version=2)
    definitions = read_signature_defs((target / TFLITE_FILE).read_bytes())
    assert set(definitions["serving_default"].inputs) == {"image"}
    assert set(definitions["serving_default"].outputs) == {"probabilities", "digit"}


# Not UTF-8 (0xff, 0x80), so flexbuffers.Builder.String could not store them; a -1 dimension encodes so.
BINARY_VALUES = {"serving_default": b"\x12\xff\xff\x80\x01 proto", "b": b"", "a": bytes(range(1, 256))}


def test_signature_map_values_are_strings_holding_any_bytes():
    root = flexbuffers.GetRoot(tflite_signatures.string_map(BINARY_VALUES))
    entries = root.AsMap
    # TF Serving reads each value with AsString(): it must be a STRING, not a BLOB.
    assert all(value.IsString for value in entries.Values)
    assert [key.AsKey for key in entries.Keys] == ["a", "b", "serving_default"]
    for key, value in BINARY_VALUES.items():
        assert entries[key].AsStringBytes == value  # lookup by key binary-searches the sorted keys


def test_a_signature_with_a_nul_byte_is_refused():
    # TF Serving reads the value as a C string and would silently cut it.
    with pytest.raises(ValueError, match="NUL"):
        tflite_signatures.with_signature_defs(b"", {"serving_default": b"a\0b"})


def test_signature_metadata_is_written_once(version_dir):
    content = (version_dir / TFLITE_FILE).read_bytes()
    with pytest.raises(ValueError, match="already has"):
        tflite_signatures.with_signature_defs(content, {"serving_default": b"x"})


def test_signature_metadata_round_trips_through_a_converted_model(version_dir):
    converted = tf.lite.TFLiteConverter.from_saved_model(str(version_dir)).convert()
    written = tflite_signatures.with_signature_defs(converted, BINARY_VALUES)
    assert tflite_signatures.read_signature_defs(written) == BINARY_VALUES
    # The model still loads and runs in the interpreter with the extra buffer.
    runner = Interpreter(model_content=written).get_signature_runner("serving_default")
    assert runner(image=DIGITS[:1])["probabilities"].shape == (1, 10)


FLEXBUFFERS_HEADER = Path("/usr/include/flatbuffers/flexbuffers.h")
READER_SOURCE = Path(__file__).resolve().parents[1] / "support" / "flexbuffer_map_reader.cc"


@pytest.mark.skipif(
    not (FLEXBUFFERS_HEADER.is_file() and shutil.which("g++")),
    reason="needs g++ and FlatBuffers' C++ headers (Debian: libflatbuffers-dev)",
)
def test_the_cpp_flexbuffers_reader_reads_what_tf_serving_reads(tmp_path, version_dir):
    # The C++ reader is what TF Serving runs; the Python one could share a misreading with our writer.
    reader = tmp_path / "reader"
    subprocess.run(["g++", "-std=c++17", str(READER_SOURCE), "-o", str(reader)], check=True, timeout=120)
    signature_defs = tflite_signatures.read_signature_defs((version_dir / TFLITE_FILE).read_bytes())
    # Values past 64 KiB need wide offsets; keys come back sorted.
    for entries in (BINARY_VALUES | {"large": b"x" * 70_000}, signature_defs):
        (tmp_path / "map.bin").write_bytes(tflite_signatures.string_map(entries))
        lines = subprocess.run(
            [str(reader), str(tmp_path / "map.bin")], capture_output=True, text=True, check=True, timeout=60
        ).stdout.splitlines()
        rows = [line.split(" ", 2) for line in lines]  # "key length hex"
        assert {key: bytes.fromhex(value) for key, _, value in rows} == entries
        assert [int(length) for _, length, _ in rows] == [len(entries[key]) for key, _, _ in rows]
        assert [key for key, _, _ in rows] == sorted(entries)


def test_a_version_exported_now_is_served_by_its_tflite_model(tmp_path):
    target = export_model(build_model(dense_units=8), tmp_path, version=1)
    servable = Servable("mnist", 1, target, tflite_pools=1)
    servable.enable_tflite(servable.sample_inputs())
    assert servable._signatures["serving_default"].tflite
    assert servable.predict("", {"image": DIGITS})["digit"].shape == (5,)
