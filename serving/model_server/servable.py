"""One loaded SavedModel version: its signatures, warm-up replay and predict calls."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from contract import layout
from serving.model_server import tensors
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument
from serving.model_server.tflite import TfLiteModel, tflite_path

log = logging.getLogger(__name__)

SERVE_TAG = tf.saved_model.SERVING  # "serve"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD_NAMES = (
    "tensorflow/serving/predict",
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
)


@dataclass
class _Signature:
    """A signature's TensorInfo and the concrete function that runs it."""

    definition: meta_graph_pb2.SignatureDef
    function: object
    input_dtypes: dict[str, int]
    input_shapes: dict[str, tuple[int, ...] | None]
    tflite: bool = False  # run by the version's model.tflite, once verified against `function`


def _read_signature_defs(export_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Every SignatureDef of the serving MetaGraphDef, `__saved_model_init_op` too (TF Serving lists it)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((export_dir / layout.SAVED_MODEL_FILE).read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"SavedModel at {export_dir} has no MetaGraphDef tagged '{SERVE_TAG}'")


def _shape_of(info) -> tuple[int, ...] | None:
    if info.tensor_shape.unknown_rank:
        return None
    return tuple(dim.size for dim in info.tensor_shape.dim)


class Servable:
    """A SavedModel version loaded with tf.saved_model.load, ready to serve predict requests."""

    def __init__(self, name: str, version: int, export_dir: Path, tflite_pools: int | None = None):
        self.name = name
        self.version = version
        self.export_dir = Path(export_dir)
        self._model = tf.saved_model.load(str(self.export_dir), tags=[SERVE_TAG])
        # --prefer_tflite_model: with `tflite_pools` interpreters when the version has a model.tflite.
        lite_file = tflite_path(self.export_dir) if tflite_pools is not None else None
        self._tflite = TfLiteModel(lite_file, tflite_pools) if lite_file is not None else None
        self.signature_defs = _read_signature_defs(self.export_dir)
        self._signatures: dict[str, _Signature] = {}
        for sig_name, definition in self.signature_defs.items():
            function = self._model.signatures.get(sig_name)
            if function is None:
                continue
            self._signatures[sig_name] = _Signature(
                definition,
                function,
                {alias: info.dtype for alias, info in definition.inputs.items()},
                {alias: _shape_of(info) for alias, info in definition.inputs.items()},
            )

    def input_dtypes(self, signature_name: str) -> dict[str, int]:
        """Input alias -> DataType for the REST JSON decoder (HttpRestApiHandler::GetInfoMap)."""
        name = signature_name or DEFAULT_SIGNATURE
        definition = self.signature_defs.get(name)
        if definition is None:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return {alias: info.dtype for alias, info in definition.inputs.items()}

    def prepare(
        self, signature_name: str, inputs: dict[str, np.ndarray], output_filter: tuple[str, ...] = ()
    ) -> tuple[str, tuple[str, ...]]:
        """Check a request as predict_util.cc does before Session::Run.

        Returns the signature's name (serving_default for "") and the output aliases the request fetches.

        TF Serving checks these before its batching session sees the request, so the batcher calls this
        first: an unknown signature is FAILED_PRECONDITION whatever the request's size.
        """
        name = signature_name or DEFAULT_SIGNATURE
        definition = self.signature_defs.get(name)
        if definition is None:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        if definition.method_name and definition.method_name not in PREDICT_METHOD_NAMES:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of "
                "{tensorflow/serving/predict, tensorflow/serving/classify, "
                f"tensorflow/serving/regress}}. Was: {definition.method_name}",
            )
        expected = {alias: info.dtype for alias, info in definition.inputs.items()}
        if len(inputs) != len(expected):
            sent, wanted = set(inputs), set(expected)
            raise invalid_argument(
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        for alias in inputs:
            if alias not in expected:
                raise invalid_argument(
                    f"input tensor alias not found in signature: {alias}. Inputs expected to be "
                    f"in the set {{{','.join(sorted(expected))}}}."
                )
        outputs_wanted = list(output_filter) or list(definition.outputs)
        seen = set()
        for alias in outputs_wanted:
            if alias not in definition.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(definition.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return name, tuple(outputs_wanted)

    def predict(
        self, signature_name: str, inputs: dict[str, np.ndarray], output_filter: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        """Run a signature on numpy inputs, validating like predict_util.cc; return outputs by alias."""
        name, outputs_wanted = self.prepare(signature_name, inputs, output_filter)
        signature = self._signatures.get(name)
        if signature is None:  # a SignatureDef with no function, like __saved_model_init_op
            raise invalid_argument(f"Signature {name} has no function to run")
        feeds = {}
        for index, alias in enumerate(sorted(signature.input_dtypes)):
            array = inputs[alias]
            dtype = signature.input_dtypes[alias]
            if tensors.datatype_of(array) != dtype:
                # The message Session::Run gives for a feed of the wrong dtype.
                raise invalid_argument(
                    f"Expects arg[{index}] to be {tensors.dtype_name(dtype)} but "
                    f"{tensors.dtype_name(tensors.datatype_of(array))} is provided"
                )
            _check_shape(alias, array.shape, signature.input_shapes[alias])
            feeds[alias] = array
        if signature.tflite:
            try:
                results = self._tflite.run(name, feeds)
            except (RuntimeError, ValueError) as exc:
                raise ServingError(grpc.StatusCode.INTERNAL, str(exc).splitlines()[0]) from None
            return {alias: results[alias] for alias in outputs_wanted}
        try:
            tensors_in = {alias: tf.convert_to_tensor(array) for alias, array in feeds.items()}
            results = signature.function(**tensors_in)
        except tf.errors.OpError as exc:
            raise ServingError(_grpc_code(exc), exc.message) from None
        except (TypeError, ValueError) as exc:
            raise invalid_argument(str(exc).splitlines()[0]) from None
        return {alias: results[alias].numpy() for alias in outputs_wanted}

    def enable_tflite(self, sample_inputs: dict[str, dict[str, np.ndarray]]) -> None:
        """Serve the version's model.tflite signatures, each run by TFLite if it answers like the SavedModel.

        TF Serving's TfLiteSession replaces the SavedModel: only the signatures in the file's
        signature_defs_metadata are served (saved_model_bundle_factory.cc, tflite_session.cc), so one the
        file lacks (`explain`: TFLite has no gradient kernels) is not served here either, and a warm-up
        record for it fails the load. TF Serving would serve the file unchecked; a file without the
        metadata, or a stale or foreign signature in it, is refused here with a warning, and the SavedModel
        serves instead.
        """
        if self._tflite is None:
            return
        if not self._tflite.signature_defs:
            log.warning(
                "%s/model.tflite has no signature_defs_metadata; serving the SavedModel "
                "(`python -m training.export <version dir>` writes one)",
                self.export_dir,
            )
            return
        for name in [n for n in self.signature_defs if n not in self._tflite.signature_defs]:
            del self.signature_defs[name]
            if self._signatures.pop(name, None) is None:
                continue  # __saved_model_init_op: nothing was served
            log.warning(
                "Signature %s of %s is not served: under --prefer_tflite_model TF Serving serves only the "
                "signatures of model.tflite, and it has none named %s",
                name,
                self.export_dir,
                name,
            )
        for name, signature in self._signatures.items():
            inputs = sample_inputs.get(name)
            lite = self._tflite.signature_defs[name]
            definition = signature.definition
            if (
                inputs is None
                or set(lite.inputs) != set(definition.inputs)
                or set(lite.outputs) != set(definition.outputs)
                or not self._tflite.has_tensors(lite)
            ):
                log.warning(
                    "%s/model.tflite's signature_defs_metadata entry %s does not match the SavedModel's "
                    "signature or the file's tensors; serving the SavedModel",
                    self.export_dir,
                    name,
                )
                continue
            inputs = {alias: _varied(array) for alias, array in inputs.items()}
            expected = signature.function(**{alias: tf.convert_to_tensor(a) for alias, a in inputs.items()})
            try:
                got = self._tflite.run(name, inputs)
            except (RuntimeError, ValueError) as exc:  # an op or type the interpreter cannot run
                log.warning(
                    "%s/model.tflite fails on signature %s (%s); serving the SavedModel",
                    self.export_dir,
                    name,
                    exc,
                )
                continue
            if all(_close(got[alias], expected[alias].numpy()) for alias in definition.outputs):
                signature.tflite = True
                self.signature_defs[name] = lite  # what GetModelMetadata reports, as TF Serving does
                log.info("Signature %s of %s is served by model.tflite", name, self.export_dir)
            else:
                log.warning(
                    "%s/model.tflite disagrees with signature %s; serving the SavedModel",
                    self.export_dir,
                    name,
                )

    def sample_inputs(self) -> dict[str, dict[str, np.ndarray]]:
        """One zero-filled single-row input per signature whose input shapes are fully known but the batch."""
        samples = {}
        for name, signature in self._signatures.items():
            inputs = {}
            for alias, shape in signature.input_shapes.items():
                dtype = tensors.numpy_dtype(signature.input_dtypes[alias])
                if shape is None or any(size < 0 for size in shape[1:]) or dtype is np.object_:
                    break
                inputs[alias] = np.zeros((1, *shape[1:]), dtype=dtype)
            else:
                samples[name] = inputs
        return samples

    def warm_up(self, run=None) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (PredictLog records); return how many ran.

        `run(signature_name, inputs, output_filter)` is how each record is predicted: TF Serving replays
        warm-up through the version's session, the batching session when batching is on, so the server
        passes its batcher; without one the record runs directly.
        """
        run = run or self.predict
        path = layout.warmup_path(self.export_dir)
        if not path.is_file():
            return 0
        count = 0
        started = time.monotonic()
        for record in tf.data.TFRecordDataset(str(path)):
            entry = prediction_log_pb2.PredictionLog()
            entry.ParseFromString(record.numpy())
            if entry.WhichOneof("log_type") != "predict_log":
                raise ValueError("Unsupported log_type for warmup: only predict_log is supported here")
            request = entry.predict_log.request
            inputs = {alias: tensors.proto_to_array(proto, alias) for alias, proto in request.inputs.items()}
            run(request.model_spec.signature_name, inputs, tuple(request.output_filter))
            count += 1
        log.info(
            "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
            "Elapsed time (microseconds): %d.",
            self.export_dir,
            count,
            int((time.monotonic() - started) * 1e6),
        )
        return count


def _varied(array: np.ndarray) -> np.ndarray:
    """`array` filled with seeded values in [0, 1) when it is floating point: zeros test little."""
    if not np.issubdtype(array.dtype, np.floating):
        return array
    return np.random.default_rng(0).random(array.shape).astype(array.dtype)


def _close(got: np.ndarray, expected: np.ndarray) -> bool:
    """Same shape and dtype, equal integers, floats within float32 round-off of each other."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return False
    if np.issubdtype(expected.dtype, np.floating):
        return bool(np.allclose(got, expected, rtol=1e-4, atol=1e-5))
    return bool(np.array_equal(got, expected))


def _check_shape(alias: str, shape: tuple[int, ...], expected: tuple[int, ...] | None) -> None:
    if expected is None:
        return
    if len(shape) != len(expected) or any(e >= 0 and e != s for s, e in zip(shape, expected, strict=False)):
        wanted = "[" + ",".join("?" if e < 0 else str(e) for e in expected) + "]"
        got = "[" + ",".join(map(str, shape)) + "]"
        raise invalid_argument(
            f"input tensor {alias} has shape {got}, incompatible with the signature's shape {wanted}"
        )


def _grpc_code(exc: tf.errors.OpError) -> grpc.StatusCode:
    """The gRPC code with the same number as a TensorFlow error code."""
    for code in grpc.StatusCode:
        if code.value[0] == exc.error_code:
            return code
    return grpc.StatusCode.UNKNOWN
