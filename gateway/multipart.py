"""A strict fast reading of the commonest upload: a multipart body whose only part is one file."""

from flask import Request
from werkzeug.http import parse_options_header

# RFC 2046: a boundary is 1-70 characters.
MAX_BOUNDARY = 70
ALLOWED_PART_HEADERS = frozenset({b"content-disposition", b"content-type"})


def lone_file(request: Request, field: str) -> bytes | None:
    """The bytes of file field `field` when it is the body's only part, else None (use request.files).

    This is the body `curl -F image=@digit.png` and browsers send for one file. werkzeug's general
    parser costs ~0.15 ms of CPU on it (0.5 ms with cold caches), a tenth of a prediction; this reads
    the one layout it knows and declines anything else (a preamble, more parts, other part headers, bare
    LF line ends, an epilogue, the boundary inside the data), which werkzeug then parses as usual.
    """
    boundary = request.mimetype_params.get("boundary", "")
    if not 0 < len(boundary) <= MAX_BOUNDARY:
        return None
    data = request.get_data(cache=True)  # cached: werkzeug parses the same bytes if this declines
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    opening, closing = delimiter + b"\r\n", b"\r\n" + delimiter + b"--"
    # The first delimiter may follow an empty preamble's CRLF (werkzeug's own encoder writes one).
    start = 2 if data.startswith(b"\r\n") else 0
    if not data.startswith(opening, start) or data.count(delimiter) != 2:
        return None
    headers_start = start + len(opening)
    headers_end = data.find(b"\r\n\r\n", headers_start - 2)
    content_end = data.rfind(closing)
    if headers_end < 0 or content_end < headers_end + 4 or data[content_end + len(closing) :].strip():
        return None
    disposition = None
    for line in data[headers_start:headers_end].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        if not colon or name not in ALLOWED_PART_HEADERS:
            return None
        if name == b"content-disposition":
            disposition = value.decode("latin-1")
    if disposition is None:
        return None
    kind, params = parse_options_header(disposition)
    if kind != "form-data" or params.get("name") != field or "filename" not in params:
        return None
    return data[headers_end + 4 : content_end]
