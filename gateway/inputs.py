"""Parse prediction requests (multipart, JSON base64, JSON pixels, raw image bodies) and their options."""

import base64
import binascii
import json
import re
from dataclasses import dataclass

from flask import Request

from contract.mnist import DEFAULT_PREPROCESSING, IMAGE_HEIGHT, IMAGE_WIDTH, PREPROCESSING_MODES
from contract.parsing import parse_bool
from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedImage

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
DATA_URL_PREFIX = re.compile(r"^data:[^,]{0,200},", re.IGNORECASE)
OPTION_NAMES = (
    "preprocessing",
    "version",
    "label",
    "return_processed",
    "reject",
    "explain",
    "explain_values",
)
# Flags: false unless the request says true (query string, form field or JSON field, parse_bool's words).
FLAG_NAMES = ("return_processed", "reject", "explain", "explain_values")
# Body limits come from the shapes a route accepts. Base64 is 4 bytes per 3; the envelope is the JSON or
# multipart framing and the options around one image.
ENVELOPE_BYTES = 16 * 1024
# A pixel value as JSON text: "0.123456789012345678, " is 22 characters; 24 leaves room for exponents.
PIXEL_JSON_BYTES = 24
PIXELS_JSON_BYTES = IMAGE_HEIGHT * IMAGE_WIDTH * PIXEL_JSON_BYTES + ENVELOPE_BYTES
PIXELS_KEY = b'"pixels"'


@dataclass(frozen=True)
class Options:
    """What the client asked for besides the image."""

    preprocessing: str = DEFAULT_PREPROCESSING
    version: int | None = None
    label: str | None = None
    return_processed: bool = False
    # A non-digit (the model's is_digit) is refused: 422 not_a_digit, or that error in its batch slot.
    reject: bool = False
    # Add the model's explain-signature attribution as a heat-map; `explain_values` adds the raw values.
    explain: bool = False
    explain_values: bool = False


@dataclass(frozen=True)
class ImageInput:
    """One image to predict: encoded bytes, or a pixel array as sent (validated later)."""

    data: bytes | None = None
    pixels: object = None


def single_body_limit(max_upload_bytes: int, max_request_bytes: int) -> int:
    """Bytes POST /v1/predict accepts: one image of `max_upload_bytes`, as base64 JSON at most."""
    return min(max_request_bytes, base64_size(max_upload_bytes) + ENVELOPE_BYTES)


def batch_body_limit(max_upload_bytes: int, max_batch: int, max_request_bytes: int) -> int:
    """Bytes POST /v1/predict/batch accepts: `max_batch` images' worth, at most `max_request_bytes`."""
    return min(max_request_bytes, max_batch * (base64_size(max_upload_bytes) + ENVELOPE_BYTES))


def base64_size(raw_bytes: int) -> int:
    """Length of the base64 text of `raw_bytes` bytes."""
    return -(-raw_bytes // 3) * 4


def limit_body(request: Request, max_bytes: int) -> None:
    """Hold this request's body to `max_bytes`: 413 from Content-Length before anything is read.

    A body without Content-Length (chunked) is cut off at the same size by werkzeug while reading.
    """
    request.max_content_length = max_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(
            f"the request body is {request.content_length} bytes, over this route's limit of {max_bytes}",
            code="body_too_large",
        )


def read_json(request: Request, pixels_limit: int) -> object:
    """The parsed JSON body; 400 for invalid JSON or nesting deep enough to break the parser.

    A pixels body over `pixels_limit` bytes is 413, decided before parsing when its "pixels" key is
    plain in the bytes (the only way to spell it without escapes), and after parsing otherwise.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("the request body is empty", code="empty_body")
    if len(raw) > pixels_limit and PIXELS_KEY in raw:
        raise _pixels_too_large(len(raw), pixels_limit)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("the request body is not valid JSON", code="malformed_json") from exc
    if len(raw) > pixels_limit and isinstance(body, dict) and "pixels" in body:
        raise _pixels_too_large(len(raw), pixels_limit)
    return body


def _pixels_too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a pixels body of {size} bytes is over the {limit} bytes its {IMAGE_HEIGHT}x{IMAGE_WIDTH} "
        "arrays can take",
        code="body_too_large",
    )


def body_kind(request: Request) -> str:
    """'multipart', 'json', 'image' or 'empty' from the Content-Type; 415 for anything else."""
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        return "multipart"
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return "json"
    if mimetype.startswith("image/") or mimetype == "application/octet-stream":
        return "image"
    if not request.get_data(cache=True):
        raise BadRequest("the request body is empty", code="empty_body")
    raise UnsupportedImage(
        f"unsupported Content-Type {mimetype or '(none)'}: send multipart/form-data, "
        "application/json or an image/* body",
        code="unsupported_media_type",
    )


def parse_options(request: Request, body: dict | None) -> Options:
    """Options from the query string, multipart form fields and JSON fields (JSON wins), validated (400)."""
    raw = request_fields(request, body, OPTION_NAMES)
    preprocessing = parse_preprocessing(raw.get("preprocessing"))
    version = parse_version(raw.get("version"))
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or not LABEL_PATTERN.match(label)):
        raise BadRequest("label must be 1-128 letters, digits, '_', '.' or '-'", code="bad_option")
    if version is not None and label is not None:
        raise BadRequest("give either version or label, not both", code="bad_option")
    flags = {name: _parse_bool(raw.get(name, False), name) for name in FLAG_NAMES}
    if flags["explain_values"] and not flags["explain"]:
        raise BadRequest("explain_values needs explain=true", code="bad_option")
    return Options(preprocessing=preprocessing, version=version, label=label, **flags)


def request_fields(request: Request, body: dict | None, names: tuple[str, ...]) -> dict[str, object]:
    """The fields `names` from the query string, multipart form and JSON body (JSON wins, then form)."""
    form = request.form if request.mimetype == "multipart/form-data" else {}
    raw: dict[str, object] = {}
    for source in (request.args, form):
        for name in names:
            if name in source:
                raw[name] = source[name]
    if body is not None:
        raw.update({name: body[name] for name in names if name in body and body[name] is not None})
    return raw


def parse_preprocessing(value: object) -> str:
    """A preprocessing mode (any case); absent is the default; anything else is a 400 bad_option."""
    if value is None:
        return DEFAULT_PREPROCESSING
    if not isinstance(value, str) or value.lower() not in PREPROCESSING_MODES:
        raise BadRequest(f"preprocessing must be one of {list(PREPROCESSING_MODES)}", code="bad_option")
    return value.lower()


def parse_version(value: object) -> int | None:
    """A model version: a positive integer (or its digits); absent or empty is None; else 400 bad_option."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest("version must be a positive integer", code="bad_option")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value < 2**63:
        raise BadRequest("version must be a positive integer", code="bad_option")
    return value


def _parse_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not value.strip():  # `?return_processed=` (an empty form field) means not set
            return False
        try:
            return parse_bool(value)
        except ValueError:
            pass
    raise BadRequest(f"{name} must be true or false", code="bad_option")


def decode_base64(text: object, max_bytes: int) -> bytes:
    """Bytes from base64 text (standard or URL-safe, padding optional, data: URL prefix allowed)."""
    if not isinstance(text, str):
        raise BadRequest("image must be a base64 string", code="bad_image_field")
    text = DATA_URL_PREFIX.sub("", text.strip(), count=1)
    text = "".join(text.split())
    if len(text) * 3 // 4 > max_bytes + 3:
        raise PayloadTooLarge(f"image is over the {max_bytes}-byte upload limit", code="upload_too_large")
    if not text:
        raise BadRequest("image is an empty string", code="bad_image_field")
    text += "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("image is not valid base64", code="bad_base64") from exc
    _check_size(data, max_bytes)
    return data


def read_upload(storage, max_bytes: int) -> bytes:
    """The bytes of an uploaded file, refusing more than `max_bytes` without reading it all."""
    data = storage.read(max_bytes + 1)
    _check_size(data, max_bytes)
    return data


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is over the {max_bytes}-byte upload limit", code="upload_too_large")


def single_input(request: Request, max_bytes: int, max_request_bytes: int) -> tuple[ImageInput, Options]:
    """The one image of POST /v1/predict and its options; 413 for a body over what one image takes."""
    limit_body(request, single_body_limit(max_bytes, max_request_bytes))
    body = single_body(request)
    options = parse_options(request, body)
    return single_image(request, body, max_bytes), options


def single_body(request: Request) -> dict | None:
    """The JSON object of a one-image request (None for multipart and raw image bodies); 400/415 else."""
    if body_kind(request) != "json":
        return None
    body = read_json(request, PIXELS_JSON_BYTES)
    if not isinstance(body, dict):
        raise BadRequest(
            'JSON body must be an object: {"image": "<base64>"} or {"pixels": [[...]]}', code="bad_json_body"
        )
    return body


def single_image(request: Request, body: dict | None, max_bytes: int) -> ImageInput:
    """The one image of a request whose JSON object (if any) `single_body` read."""
    if body is None and request.mimetype == "multipart/form-data":
        storage = request.files.get("image")
        if storage is None:
            raise BadRequest("multipart body has no file field 'image'", code="missing_image")
        return ImageInput(data=read_upload(storage, max_bytes))
    if body is None:
        data = request.get_data(cache=True)
        if not data:
            raise BadRequest("the request body is empty", code="empty_body")
        _check_size(data, max_bytes)
        return ImageInput(data=data)
    has_image, has_pixels = body.get("image") is not None, body.get("pixels") is not None
    if has_image == has_pixels:
        raise BadRequest(
            'JSON body needs exactly one of "image" (base64) or "pixels" (28x28 numbers)',
            code="missing_image",
        )
    if has_image:
        return ImageInput(data=decode_base64(body["image"], max_bytes))
    return ImageInput(pixels=body["pixels"])


def batch_inputs(
    request: Request, max_bytes: int, max_batch: int, max_request_bytes: int
) -> tuple[list[ImageInput | Exception], Options]:
    """The images of POST /v1/predict/batch (an item that cannot be read is its error) and options."""
    limit_body(request, batch_body_limit(max_bytes, max_batch, max_request_bytes))
    kind = body_kind(request)
    if kind == "multipart":
        files = request.files.getlist("images") + request.files.getlist("image")
        _check_count(len(files), max_batch)
        items = [
            _attempt(lambda storage=storage: ImageInput(data=read_upload(storage, max_bytes)))
            for storage in files
        ]
        return items, parse_options(request, None)
    if kind == "image":
        raise UnsupportedImage(
            "a batch is multipart 'images' or JSON, not a single image body", code="unsupported_media_type"
        )
    body = read_json(request, max_batch * PIXELS_JSON_BYTES)
    options_body = body if isinstance(body, dict) else None
    if isinstance(body, list):
        body = {"images": body}
    if not isinstance(body, dict):
        raise BadRequest('JSON body must be {"images": [...]} or {"pixels": [...]}', code="bad_json_body")
    images, pixels = body.get("images"), body.get("pixels")
    if (images is None) == (pixels is None):
        raise BadRequest(
            'JSON body needs exactly one of "images" (base64 list) or "pixels" (list of 28x28)',
            code="missing_image",
        )
    entries = images if images is not None else pixels
    if not isinstance(entries, list):
        raise BadRequest("images/pixels must be a JSON list", code="bad_json_body")
    _check_count(len(entries), max_batch)
    options = parse_options(request, options_body)
    if images is not None:
        items = [
            _attempt(lambda entry=entry: ImageInput(data=decode_base64(entry, max_bytes)))
            for entry in entries
        ]
    else:
        items = [ImageInput(pixels=entry) for entry in entries]
    return items, options


def _check_count(count: int, max_batch: int) -> None:
    if count == 0:
        raise BadRequest("the batch has no images", code="empty_batch")
    if count > max_batch:
        raise PayloadTooLarge(
            f"the batch has {count} images, over the limit of {max_batch}", code="batch_too_large"
        )


def _attempt(make):
    """The ImageInput, or the 4xx error reading it raised (kept per item in a batch)."""
    try:
        return make()
    except (BadRequest, PayloadTooLarge, UnsupportedImage) as error:
        return error
