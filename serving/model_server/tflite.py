"""A version's `model.tflite`, run like TF Serving's TfLiteSession under `--prefer_tflite_model`.

TF Serving looks for `model.tflite` in the SavedModel version directory and, with the flag set, serves
it instead of `saved_model.pb` from pools of TFLite interpreters. The interpreter is ai-edge-litert's,
the maintained home of TensorFlow Lite (TF 2.21's tf.lite.Interpreter is deprecated in its favour).
"""

import logging
import queue
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from tensorflow.core.protobuf import meta_graph_pb2

from contract import layout, tflite_signatures

log = logging.getLogger(__name__)


def tflite_path(export_dir: Path) -> Path | None:
    """`<version>/model.tflite` when it exists (TF Serving's TfLiteModelFound)."""
    path = layout.tflite_path(export_dir)
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
        interpreters = [Interpreter(model_content=content, num_threads=1) for _ in range(max(1, pools))]
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
    return {
        key: meta_graph_pb2.SignatureDef.FromString(value)
        for key, value in tflite_signatures.read_signature_defs(content).items()
    }
