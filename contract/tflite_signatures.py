"""SignatureDefs in a .tflite file's `signature_defs_metadata` entry, where TF Serving reads them.

TF Serving's TfLiteSession takes a model's signatures from this metadata entry
(tensorflow/lite/tools/signature/signature_def_util.cc): a FlexBuffer map of signature key -> serialized
SignatureDef, each value a FlexBuffer STRING that it reads with `AsString().c_str()`. TensorFlow's
converter does not write the entry, and no public Python API does:
- the TFLite tool that does (`signature_def_utils`) is not shipped in the tensorflow or ai-edge-litert
  wheels;
- the public `flexbuffers.Builder.String` only takes text, and a serialized proto is not UTF-8; its
  `Blob` writes a BLOB, which `AsString()` reads as empty.
So this module writes the small FlexBuffer itself, following the published FlexBuffers format, and checks
the result with the public `flexbuffers` reader. The metadata entry is added to the model with the
public `ai_edge_litert.tools.flatbuffer_utils` object API and the TFLite schema classes it is built on
(`ai_edge_litert.schema_py_generated`, a public module of the ai-edge-litert package).

TensorFlow-free: SignatureDefs go in and come out serialized, so callers own the proto types.
"""

from flatbuffers import flexbuffers

SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # tflite::kSignatureDefsMetadataName
_WIDTH = 4  # bytes of every size and offset in the FlexBuffer; a metadata entry is far below 4 GiB
_BIT_WIDTH = flexbuffers.BitWidth.W32


def read_signature_defs(content: bytes) -> dict[str, bytes]:
    """Serialized SignatureDefs by key from a .tflite file's metadata ({} when it has no entry).

    Each value is cut at its first NUL byte, since TF Serving reads it as a C string.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.Model.GetRootAs(content, 0)
    for position in range(model.MetadataLength()):
        metadata = model.Metadata(position)
        if metadata.Name() != SIGNATURE_DEFS_METADATA.encode():
            continue
        data = model.Buffers(metadata.Buffer()).DataAsNumpy().tobytes()
        entries = flexbuffers.GetRoot(data).AsMap
        return {
            key.AsKey: value.AsStringBytes.split(b"\0", 1)[0]
            for key, value in zip(entries.Keys, entries.Values, strict=True)
            if value.IsString
        }
    return {}


def with_signature_defs(content: bytes, signature_defs: dict[str, bytes]) -> bytes:
    """`content` (a .tflite model) with `signature_defs` (key -> serialized SignatureDef) as its entry.

    Raises ValueError for a value with a NUL byte (TF Serving would cut it there) or an existing entry.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    for key, value in signature_defs.items():
        if b"\0" in value or "\0" in key:
            raise ValueError(f"signature {key!r} has a NUL byte; TF Serving reads it as a C string")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    if any(
        m.name in (SIGNATURE_DEFS_METADATA, SIGNATURE_DEFS_METADATA.encode()) for m in model.metadata or []
    ):
        raise ValueError(f"the model already has a {SIGNATURE_DEFS_METADATA} entry")
    buffer = flatbuffer_utils.BufferT()
    buffer.data = list(string_map(signature_defs))
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = SIGNATURE_DEFS_METADATA
    metadata.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def string_map(entries: dict[str, bytes]) -> bytes:
    """A FlexBuffer whose root is a map of text keys to STRING values holding arbitrary bytes.

    Layout (FlexBuffers format, every size and offset `_WIDTH` bytes, little-endian, offsets counted back
    from where they are stored): the keys (NUL-terminated), the values (size, bytes, NUL), the keys vector,
    the map (keys-vector offset, its byte width, count, value offsets, one packed type per value), and
    the root (offset to the map, its packed type, its byte width). Keys are sorted by bytes, as readers
    binary-search them.
    """
    out = bytearray()

    def align() -> None:
        out.extend(bytes(-len(out) % _WIDTH))

    def put(number: int) -> None:
        out.extend(number.to_bytes(_WIDTH, "little"))

    keys = sorted(entries, key=str.encode)
    key_positions = []
    for key in keys:
        key_positions.append(len(out))
        out.extend(key.encode() + b"\0")
    value_positions = []
    for key in keys:
        align()
        put(len(entries[key]))
        value_positions.append(len(out))
        out.extend(entries[key] + b"\0")
    align()
    put(len(keys))
    keys_vector = len(out)
    for position in key_positions:
        put(len(out) - position)
    put(len(out) - keys_vector)  # the map's prefix: where its keys are, their width, its size
    put(_WIDTH)
    put(len(keys))
    map_start = len(out)
    for position in value_positions:
        put(len(out) - position)
    out.extend(bytes([_packed(flexbuffers.Type.STRING)]) * len(keys))
    align()
    put(len(out) - map_start)
    out.extend(bytes([_packed(flexbuffers.Type.MAP), _WIDTH]))
    if len(out) >= 1 << (8 * _WIDTH - 1):
        raise ValueError("signature_defs_metadata would not fit 32-bit FlexBuffer offsets")
    return bytes(out)


def _packed(type_: int) -> int:
    """A FlexBuffer packed type byte: the value's type and the bit width of what it points to."""
    return (type_ << 2) | _BIT_WIDTH
