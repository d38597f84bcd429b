"""The one-file multipart fast path reads exactly what werkzeug reads, and declines everything else."""

import io

import pytest
import requests
from flask import Request
from werkzeug.test import EnvironBuilder

from gateway.inputs import single_input
from gateway.multipart import lone_file

# Bytes a naive parser could trip on: CRLFs, dashes, a partial boundary, a NUL.
FILE = b"\x89PNG\r\n\x1a\n--\r\n--frontier\r\n\r\n\x00" + bytes(range(256)) * 4
BOUNDARY = "frontier-42"


def request_for(body: bytes, content_type: str) -> Request:
    return Request(EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ())


def werkzeug_file(body: bytes, content_type: str, field: str = "image") -> bytes | None:
    storage = request_for(body, content_type).files.get(field)
    return None if storage is None else storage.read()


def manual(parts: list[tuple[list[str], bytes]], *, newline: bytes = b"\r\n", epilogue: bytes = b"") -> bytes:
    """A multipart body from (header lines, content) pairs."""
    body = b""
    for headers, content in parts:
        body += b"--" + BOUNDARY.encode() + newline
        body += b"".join(line.encode() + newline for line in headers) + newline + content + newline
    return body + b"--" + BOUNDARY.encode() + b"--" + newline + epilogue


def from_werkzeug() -> tuple[bytes, str]:
    builder = EnvironBuilder(method="POST", data={"image": (io.BytesIO(FILE), "digit.png", "image/png")})
    environ = builder.get_environ()
    return environ["wsgi.input"].read(), environ["CONTENT_TYPE"]


def from_requests() -> tuple[bytes, str]:
    prepared = requests.Request(
        "POST", "http://gateway/v1/predict", files={"image": ("digit.png", FILE, "image/png")}
    ).prepare()
    return prepared.body, prepared.headers["Content-Type"]


IMAGE_PART = ['Content-Disposition: form-data; name="image"; filename="d.png"']
LABEL_PART = ['Content-Disposition: form-data; name="label"']
CT = f"multipart/form-data; boundary={BOUNDARY}"


def from_curl_layout() -> tuple[bytes, str]:
    return manual([([*IMAGE_PART, "Content-Type: image/png"], FILE)]), CT


@pytest.mark.parametrize("encoder", [from_werkzeug, from_requests, from_curl_layout])
def test_one_file_bodies_read_the_same_bytes_as_werkzeug(encoder):
    body, content_type = encoder()
    assert lone_file(request_for(body, content_type), "image") == werkzeug_file(body, content_type) == FILE


def test_trailing_newline_after_the_close_delimiter_is_accepted():
    body = manual([(IMAGE_PART, FILE)], epilogue=b"\r\n")
    assert lone_file(request_for(body, CT), "image") == FILE


def test_an_empty_file_reads_as_empty_like_werkzeug():
    body = manual([(IMAGE_PART, b"")])
    assert lone_file(request_for(body, CT), "image") == werkzeug_file(body, CT) == b""


DECLINED = {
    "second part": manual([(IMAGE_PART, FILE), (LABEL_PART, b"stable")]),
    "field without filename": manual([(['Content-Disposition: form-data; name="image"'], FILE)]),
    "other field name": manual([(['Content-Disposition: form-data; name="file"; filename="d.png"'], FILE)]),
    "transfer encoding header": manual([([*IMAGE_PART, "Content-Transfer-Encoding: base64"], FILE)]),
    "no disposition": manual([(["Content-Type: image/png"], FILE)]),
    "bare LF line ends": manual([(IMAGE_PART, FILE)], newline=b"\n"),
    "boundary inside the data": manual([(IMAGE_PART, FILE + b"\r\n--" + BOUNDARY.encode() + b"x")]),
    "epilogue text": manual([(IMAGE_PART, FILE)], epilogue=b"\r\nmore"),
    "no close delimiter": manual([(IMAGE_PART, FILE)])[: -len(BOUNDARY) - 6],
    "preamble text": b"This is a preamble.\r\n" + manual([(IMAGE_PART, FILE)]),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_other_layouts_are_left_to_werkzeug(case):
    assert lone_file(request_for(DECLINED[case], CT), "image") is None


@pytest.mark.parametrize("case", ["second part", "bare LF line ends", "boundary inside the data"])
def test_declined_bodies_still_give_werkzeug_s_reading(case):
    body = DECLINED[case]
    item, _ = single_input(request_for(body, CT), max_bytes=1_000_000)
    assert item.data == werkzeug_file(body, CT)


def test_options_from_a_second_part_still_count():
    body = DECLINED["second part"]
    _, options = single_input(request_for(body, CT), max_bytes=1_000_000)
    assert options.label == "stable"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=" + "b" * 71])
def test_missing_or_overlong_boundary_is_declined(content_type):
    body, _ = from_curl_layout()
    assert lone_file(request_for(body, content_type), "image") is None
