"""A version's `model.tflite`, run like TF Serving's TfLiteSession under `--prefer_tflite_model`.

TF Serving looks for `model.tflite` in the SavedModel version directory and, with the flag set, serves
it instead of `saved_model.pb` from pools of TFLite interpreters. For a small CNN at batch 1 the TFLite
interpreter (with XNNPACK) costs about half of a TensorFlow function call: 0.55 vs 1.05 ms here.
"""

import logging
import queue
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.lite.python import schema_py_generated as schema_fb

log = logging.getLogger(__name__)

TFLITE_FILE = "model.tflite"
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # tflite::kSignatureDefsMetadataName


def tflite_path(export_dir: Path) -> Path | None:
    """`<version>/model.tflite` when it exists (TF Serving's TfLiteModelFound)."""
    path = Path(export_dir) / TFLITE_FILE
    return path if path.is_file() else None


class TfLiteModel:
    """A .tflite file on `pools` interpreters, each borrowed by one call at a time, like TfLiteSession.

    Signatures come from the file's "signature_defs_metadata" entry, as in TF Serving, and tensors are
    found by their TensorInfo names. TF Serving's `--num_tflite_interpreters_per_pool` only sizes a batch
    scheduler that splits large batches; here a batch always runs whole on one interpreter.
    """

    def __init__(self, path: Path, pools: int):
        content = Path(path).read_bytes()
        self.signature_defs = read_signature_defs(content)
        with warnings.catch_warnings():
            # TF 2.21 warns that tf.lite.Interpreter will move to the ai-edge-litert package; it is still
            # part of the pinned TensorFlow (serving/requirements.txt).
            warnings.simplefilter("ignore", UserWarning)
            interpreters = [
                tf.lite.Interpreter(model_content=content, num_threads=1) for _ in range(max(1, pools))
            ]
        first = interpreters[0]
        self._tensor_index = {
            d["name"]: d["index"] for d in first.get_input_details() + first.get_output_details()
        }
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for interpreter in interpreters:
            interpreter.allocate_tensors()
            self._idle.put(_Slot(interpreter))

    def has_tensors(self, definition: meta_graph_pb2.SignatureDef) -> bool:
        """Whether every input and output of `definition` names a tensor of this model."""
        infos = [*definition.inputs.values(), *definition.outputs.values()]
        return all(info.name in self._tensor_index for info in infos)

    def run(self, signature: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run `signature` on `feeds` with an idle interpreter; waits while all are busy."""
        definition = self.signature_defs[signature]
        inputs = {self._tensor_index[definition.inputs[alias].name]: array for alias, array in feeds.items()}
        slot = self._idle.get()
        try:
            slot.resize(inputs)
            for index, array in inputs.items():
                slot.interpreter.set_tensor(index, array)
            slot.interpreter.invoke()
            return {
                alias: slot.interpreter.get_tensor(self._tensor_index[info.name])
                for alias, info in definition.outputs.items()
            }
        finally:
            self._idle.put(slot)


class _Slot:
    """An interpreter and the input shapes its tensors are allocated for."""

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self._shapes = {d["index"]: tuple(d["shape"]) for d in interpreter.get_input_details()}

    def resize(self, inputs: dict[int, np.ndarray]) -> None:
        """Reallocate when a batch has another shape than the last one (TfLiteSession does the same)."""
        changed = {
            index: array.shape for index, array in inputs.items() if self._shapes.get(index) != array.shape
        }
        if not changed:
            return
        for index, shape in changed.items():
            self.interpreter.resize_tensor_input(index, list(shape), strict=True)
            self._shapes[index] = shape
        self.interpreter.allocate_tensors()


def read_signature_defs(content: bytes) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs stored in a .tflite file's "signature_defs_metadata" ({} when it has none)."""
    model = schema_fb.Model.GetRootAsModel(content, 0)
    for position in range(model.MetadataLength()):
        metadata = model.Metadata(position)
        if metadata.Name() != SIGNATURE_DEFS_METADATA.encode():
            continue
        data = model.Buffers(metadata.Buffer()).DataAsNumpy().tobytes()
        entries = flexbuffers.GetRoot(data).AsMap
        # TF Serving reads each value as a C string: anything after a NUL byte is lost there too.
        return {
            key.AsKey: meta_graph_pb2.SignatureDef.FromString(value.AsStringBytes.split(b"\0", 1)[0])
            for key, value in zip(entries.Keys, entries.Values, strict=True)
        }
    return {}
