"""Convert between TensorProto, numpy arrays and TF Serving's JSON tensor formats (json_tensor.cc)."""

import base64
import binascii
import json
import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.model_server.errors import invalid_argument

# DataType -> (numpy dtype, TensorProto field holding values, DataTypeString name).
_DTYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val", "float"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val", "double"),
    types_pb2.DT_INT32: (np.int32, "int_val", "int32"),
    types_pb2.DT_INT16: (np.int16, "int_val", "int16"),
    types_pb2.DT_INT8: (np.int8, "int_val", "int8"),
    types_pb2.DT_UINT8: (np.uint8, "int_val", "uint8"),
    types_pb2.DT_INT64: (np.int64, "int64_val", "int64"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val", "uint32"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val", "uint64"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val", "bool"),
    types_pb2.DT_STRING: (np.object_, "string_val", "string"),
    types_pb2.DT_HALF: (np.float16, "half_val", "half"),
}
_NUMPY_TO_DT = {np.dtype(np_type): dt for dt, (np_type, _, _) in _DTYPES.items() if np_type is not np.object_}


def dtype_name(dtype: int) -> str:
    """DataTypeString(dtype), e.g. float, int64."""
    entry = _DTYPES.get(dtype)
    return entry[2] if entry else types_pb2.DataType.Name(dtype)


def numpy_dtype(dtype: int):
    """The numpy dtype for a tensorflow DataType."""
    entry = _DTYPES.get(dtype)
    if entry is None:
        raise invalid_argument(f"Unsupported data type {types_pb2.DataType.Name(dtype)}")
    return entry[0]


def datatype_of(array: np.ndarray) -> int:
    """The tensorflow DataType of a numpy array (bytes/str objects are DT_STRING)."""
    if array.dtype == np.object_ or array.dtype.kind in "SU":
        return types_pb2.DT_STRING
    return _NUMPY_TO_DT[array.dtype]


def proto_to_array(proto: tensor_pb2.TensorProto, alias: str) -> np.ndarray:
    """Decode a request TensorProto (tensor_content or typed *_val fields) like Tensor::FromProto."""
    entry = _DTYPES.get(proto.dtype)
    if entry is None:
        raise invalid_argument(f"tensor parsing error: {alias}")
    np_type, field, _ = entry
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise invalid_argument(f"tensor parsing error: {alias}")
    size = math.prod(shape)
    if proto.tensor_content and proto.dtype != types_pb2.DT_STRING:
        flat = np.frombuffer(proto.tensor_content, dtype=np_type)
        if flat.size != size:
            raise invalid_argument(f"tensor parsing error: {alias}")
        return flat.reshape(shape)
    values = getattr(proto, field)
    count = len(values)
    if proto.dtype == types_pb2.DT_STRING:
        flat = np.empty(count, dtype=object)
        flat[:] = list(values)
    elif proto.dtype == types_pb2.DT_HALF:
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.asarray(values, dtype=np_type)
    if count == size:
        return flat.reshape(shape)
    # Tensor::FromProto: fewer values than elements repeats the last one; more is an error.
    if 0 < count < size:
        padded = np.empty(size, dtype=flat.dtype)
        padded[:count] = flat
        padded[count:] = flat[-1]
        return padded.reshape(shape)
    if count == 0 and size > 0:
        return (
            np.zeros(shape, dtype=np_type) if np_type is not np.object_ else np.full(shape, b"", dtype=object)
        )
    if count == 0 and size == 0:
        return flat.reshape(shape)
    raise invalid_argument(f"tensor parsing error: {alias}")


def array_to_proto(array: np.ndarray, proto: tensor_pb2.TensorProto) -> None:
    """Fill `proto` from `array` with typed value fields (Tensor::AsProtoField, as TF Serving replies)."""
    dtype = datatype_of(array)
    proto.dtype = dtype
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    field = _DTYPES[dtype][1]
    flat = array.ravel()
    if dtype == types_pb2.DT_STRING:
        getattr(proto, field).extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype == types_pb2.DT_HALF:
        getattr(proto, field).extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, field).extend(flat.tolist())


# ---------------------------------------------------------------- JSON requests (FillPredictRequestFromJson)

_JSON_TYPES = (
    (type(None), "Null"),
    (bool, None),
    (dict, "Object"),
    (list, "Array"),
    (str, "String"),
    (int, "Number"),
    (float, "Number"),
)
_FLOAT32_MAX_INT = (1 << 24) - 1
_FLOAT64_MAX_INT = (1 << 53) - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _json_type(value) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind) and name:
            return name
    return "Unknown"


def _json_str(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def _type_error(value, dtype: int):
    return invalid_argument(
        f"JSON Value: {_json_str(value)} Type: {_json_type(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _is_b64_object(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value) -> bytes:
    if not _is_b64_object(value):
        raise invalid_argument(f"JSON Value: {_json_str(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _check_scalar(value, dtype: int):
    """One JSON leaf converted for `dtype`, with json_tensor.cc's AddValueToTensor checks."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF):
        if not is_number:
            raise _type_error(value, dtype)
        limit = _FLOAT64_MAX_INT if dtype == types_pb2.DT_DOUBLE else _FLOAT32_MAX_INT
        if isinstance(value, int) and abs(value) > limit:
            raise invalid_argument(
                f"Cannot convert JSON value: {value} to {dtype_name(dtype)} without loss of precision."
            )
        if (
            dtype != types_pb2.DT_DOUBLE
            and isinstance(value, float)
            and math.isfinite(value)
            and abs(value) > _FLOAT32_MAX
        ):
            raise invalid_argument(
                f"Cannot convert JSON value: {_json_str(value)} to float without loss of precision."
            )
        return value
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, dict):
            return _decode_b64(value)
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode()
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, dict):
        raise _type_error(value, dtype)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(value, dtype)
    info = np.iinfo(_DTYPES[dtype][0])
    # rapidjson IsInt()/IsInt64()/IsUint() range checks; int8/16/uint8 accept any int32 like TF Serving.
    low, high = (
        (-(1 << 31), (1 << 31) - 1)
        if dtype in (types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_UINT8, types_pb2.DT_INT32)
        else (info.min, info.max)
    )
    if not low <= value <= high:
        raise _type_error(value, dtype)
    return value


def _dense_shape(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list[int], dtype: int, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {_json_str(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(value, dict) and dtype != types_pb2.DT_STRING:
            raise _type_error(value, dtype)
        out.append(_check_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


_FLOAT_TYPES = (types_pb2.DT_FLOAT, types_pb2.DT_HALF)


def _fast_float_array(value, dtype: int) -> np.ndarray | None:
    """A dense list of numbers for a float input, converted in C; None when the slow path must decide.

    numpy builds an int or float array only from well-formed numeric lists; strings, objects and ragged
    lists give other dtypes or errors and go through _fill for TF Serving's exact message. numpy would
    turn JSON true/false into numbers, so callers only take this path for bodies without them.
    """
    if dtype not in _FLOAT_TYPES or not isinstance(value, list):
        return None
    try:
        array = np.array(value)
    except (ValueError, TypeError):
        return None
    if array.dtype.kind not in "if" or array.dtype.itemsize != 8:
        return None
    if array.size:
        finite = np.abs(array[np.isfinite(array)]) if array.dtype.kind == "f" else np.abs(array)
        limit = _FLOAT32_MAX_INT if array.dtype.kind == "i" else _FLOAT32_MAX
        if finite.size and finite.max() > limit:
            return None
    return array.astype(numpy_dtype(dtype))


def json_value_to_array(value, dtype: int, fast: bool = False) -> np.ndarray:
    """A dense JSON value (scalar or nested lists) as an array of `dtype`, validated like FillTensorProto.

    `fast` allows the numpy shortcut; pass it only when the document holds no JSON booleans.
    """
    array = _fast_float_array(value, dtype) if fast else None
    if array is not None:
        return array
    shape = _dense_shape(value)
    out: list = []
    _fill(value, 0, shape, dtype, out)
    np_type = numpy_dtype(dtype)
    if np_type is np.object_:
        array = np.empty(len(out), dtype=object)
        array[:] = out
        return array.reshape(shape)
    return np.asarray(out, dtype=np_type).reshape(shape)


def parse_json_body(body: bytes) -> dict:
    """Parse a request body; TF Serving's messages for empty, invalid and non-object documents."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        raise invalid_argument("JSON Parse error: Invalid encoding in string. at offset: 0") from None
    except json.JSONDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_json_str(doc)} Is not object")
    return doc


def signature_name_of(doc: dict) -> str:
    """The optional `signature_name` key ('' when absent)."""
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_json_str(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _element_is_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64_object(value)


def _instances_to_arrays(instances: list, input_dtypes: dict[str, int], fast: bool) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = _element_is_object(instances[0])
    if fast and not objects and len(input_dtypes) == 1:
        # Every element has the same shape when numpy makes a dense numeric array of the whole list.
        name = next(iter(input_dtypes))
        batch = _fast_float_array(instances, input_dtypes[name])
        if batch is not None:
            return {name: batch}
    names = sorted(input_dtypes)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index, element in enumerate(instances):
        if objects:
            if not _element_is_object(element):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                if name not in input_dtypes:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' "
                        f"list. Error: INVALID_ARGUMENT: JSON object: does not have named "
                        f"input: {name}"
                    )
                rows[name].append(_instance_item(item, name, input_dtypes[name], rows[name], index, name))
            if set(element) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_json_str(element)} keys must be equal to: {','.join(names)}"
                )
        else:
            if _element_is_object(element):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            name = names[0]
            rows[name].append(_instance_item(element, name, input_dtypes[name], rows[name], index, None))
    return {name: np.stack(items) if items else np.zeros((0,)) for name, items in rows.items()}


def _instance_item(item, name: str, dtype: int, previous: list, index: int, key: str | None) -> np.ndarray:
    where = f"Failed to process element: {index}" + (f" key: {key}" if key else "") + " of 'instances' list."
    try:
        array = json_value_to_array(item, dtype)
    except Exception as exc:
        raise invalid_argument(f"{where} Error: INVALID_ARGUMENT: {exc}") from None
    if previous:
        first = previous[0]
        if first.size != array.size:
            raise invalid_argument(
                f"{where} Error: INVALID_ARGUMENT: Expecting tensor size: {first.size} but got: {array.size}"
            )
        if first.shape != array.shape:
            raise invalid_argument(
                f"{where} Error: INVALID_ARGUMENT: Expecting shape "
                f"[{','.join(map(str, first.shape))}] but got: "
                f"[{','.join(map(str, array.shape))}]"
            )
    return array


def _inputs_to_arrays(value, input_dtypes: dict[str, int], fast: bool) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64_object(value):
        if len(input_dtypes) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name = next(iter(input_dtypes))
        return {name: json_value_to_array(value, input_dtypes[name], fast)}
    arrays = {}
    for name in sorted(input_dtypes):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_value_to_array(value[name], input_dtypes[name], fast)
    return arrays


def request_arrays_from_json(
    doc: dict, input_dtypes: dict[str, int], fast: bool = False, signature_name: str = ""
) -> tuple[dict[str, np.ndarray], str]:
    """Inputs of a predict body and its format ('row' for instances, 'columnar' for inputs).

    `fast` (numpy conversion of numeric lists) is only correct when the body holds no JSON booleans.
    `signature_name` is the body's, named in the error for a signature without inputs.
    """
    if not input_dtypes:
        raise invalid_argument(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_json_str(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {_json_str(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {_json_str(doc)} No values in 'instances' array")
        return _instances_to_arrays(instances, input_dtypes, fast), "row"
    if has_inputs:
        return _inputs_to_arrays(doc["inputs"], input_dtypes, fast), "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# ---------------------------------------------------------------- JSON responses (MakeJsonFromTensors)


def _format_float(value, np_type) -> str:
    """WriteDecimal(): shortest %g form that round-trips, '.0' on whole numbers, NaN/Infinity."""
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "-Infinity" if number < 0 else "Infinity"
    text = f"{number:g}"
    if np_type(text) != value:
        text = f"{number:.9g}" if np_type is np.float32 else f"{number:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _leaf_writer(array: np.ndarray, bytes_tensor: bool):
    kind = array.dtype
    if kind in (np.float32, np.float16):
        return lambda v: _format_float(v, np.float32)
    if kind == np.float64:
        return lambda v: _format_float(v, np.float64)
    if kind == np.bool_:
        return lambda v: "true" if v else "false"
    if kind == np.object_:
        if bytes_tensor:
            return lambda v: json.dumps({"b64": base64.b64encode(bytes(v)).decode()})
        return lambda v: json.dumps(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
    return lambda v: str(int(v))


def _write(array: np.ndarray, write_leaf) -> str:
    if array.ndim == 0:
        return write_leaf(array.item() if array.dtype != np.object_ else array[()])
    if array.ndim == 1:
        return (
            "["
            + ",".join(write_leaf(v) for v in (array.tolist() if array.dtype.kind in "iub" else array))
            + "]"
        )
    return "[" + ",".join(_write(sub, write_leaf) for sub in array) + "]"


def outputs_to_json(outputs: dict[str, np.ndarray], fmt: str) -> str:
    """{"predictions": ...} (row) or {"outputs": ...} (columnar), one key per output when there are many."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    writers = {name: _leaf_writer(outputs[name], name.endswith("_bytes")) for name in names}
    many = len(names) > 1
    if fmt == "columnar":
        parts = {name: _write(outputs[name], writers[name]) for name in names}
        body = (
            ("{" + ",".join(f"{json.dumps(n)}:{parts[n]}" for n in names) + "}") if many else parts[names[0]]
        )
        return '{"outputs":' + body + "}"
    batch = None
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    rows = []
    for index in range(batch):
        cells = {name: _write(outputs[name][index], writers[name]) for name in names}
        rows.append(
            ("{" + ",".join(f"{json.dumps(n)}:{cells[n]}" for n in names) + "}") if many else cells[names[0]]
        )
    return '{"predictions":[' + ",".join(rows) + "]}"
