"""The OpenAPI description of the gateway and a readable HTML page built from it (no CDN needed)."""

import html

from flask import Blueprint, Response, current_app, jsonify

from contract.mnist import (
    DEFAULT_PREPROCESSING,
    DIGIT_SCORE_CUT,
    EXPLAIN_BASELINE,
    EXPLAIN_METHOD,
    EXPLAIN_SIGNATURE_NAME,
    EXPLAIN_STEPS,
    NUM_CLASSES,
    PREPROCESSING_MODES,
)
from gateway.heatmap import UPSCALE

docs = Blueprint("docs", __name__)

_PIXELS_DOC = "28x28 numbers, white digit on black: 0-255, or 0-1 when no value exceeds 1"
_ERROR = {"$ref": "#/components/schemas/Error"}
_OPTIONS = [
    {
        "name": "preprocessing",
        "in": "query",
        "schema": {"type": "string", "enum": list(PREPROCESSING_MODES), "default": DEFAULT_PREPROCESSING},
        "description": "standard: grayscale, resize to 28x28, scale to [0, 1]. enhanced: the MNIST recipe "
        "(polarity, denoise, threshold, crop, 20 px box, centre of mass).",
    },
    {
        "name": "version",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": "Serve with this model version. Exclusive with label.",
    },
    {
        "name": "label",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Serve with the version this label points to (e.g. stable, canary).",
    },
    {
        "name": "return_processed",
        "in": "query",
        "schema": {"type": "boolean", "default": False},
        "description": "Add the 28x28 image the model saw, as base64 PNG.",
    },
    {
        "name": "reject",
        "in": "query",
        "schema": {"type": "boolean", "default": False},
        "description": "Refuse an input the model judges not a digit (is_digit false): 422 not_a_digit with "
        "its digit_score and best guess (in a batch, that slot's error). 409 judgement_unavailable when "
        "the answering version has no judgement.",
    },
    {
        "name": "explain",
        "in": "query",
        "schema": {"type": "boolean", "default": False},
        "description": f"Add `explanation`: the {EXPLAIN_METHOD} attribution of the predicted digit as a "
        "heat-map PNG over the model input, from one more model call to the version that answered. 409 "
        f"explanation_unavailable when that version has no {EXPLAIN_SIGNATURE_NAME!r} signature.",
    },
    {
        "name": "explain_values",
        "in": "query",
        "schema": {"type": "boolean", "default": False},
        "description": "With explain=true, also add the raw 28x28 attribution values.",
    },
]
_ERRORS = {
    "400": "Malformed request (bad JSON, missing field, bad option, corrupt image)",
    "404": "Unknown model version or label",
    "409": "The answering model version cannot do what was asked: judgement_unavailable (reject=true, no "
    "digit judgement) or explanation_unavailable (explain=true, no explain signature); error.version "
    "names it",
    "413": "Request body over the route's limit, upload, image pixel count or batch over the limit",
    "415": "Not an image, unsupported format or Content-Type",
    "422": "No digit found, invalid pixel values, or not_a_digit (reject=true and the model judged the input "
    "not a digit; error carries digit_score, digit, confidence and version)",
    "502": "The model server replied with something unusable",
    "503": "Model server unavailable (Retry-After header set)",
    "504": "Model server timed out",
}


_DIGIT = {"type": "integer", "minimum": 0, "maximum": NUM_CLASSES - 1}
_FEEDBACK_FIELDS = {
    "label": _DIGIT | {"description": "the digit the image really shows (required)"},
    "predicted": _DIGIT | {"description": "the digit the gateway answered"},
    "version": {"type": "integer", "minimum": 1, "description": "the model version that answered"},
    "preprocessing": {
        "type": "string",
        "enum": list(PREPROCESSING_MODES),
        "default": DEFAULT_PREPROCESSING,
        "description": "the mode of the reply the user saw; the stored model input is made with it",
    },
}
_FEEDBACK_RECORD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        **_FEEDBACK_FIELDS,
        "held_out": {"type": "boolean", "description": "kept out of retraining (contract/feedback.py)"},
    },
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_FEEDBACK_STATS = {
    "type": "object",
    "properties": {
        "total": {"type": "integer"},
        "by_label": _COUNTS | {"description": "all ten digits, zeros included"},
        "by_version": _COUNTS | {"description": "served version -> count (records with a version)"},
        "version_unknown": {"type": "integer", "description": "records sent without a version"},
        "held_out": {"type": "integer"},
        "held_out_share": {"type": "number"},
        "trained_on": _COUNTS | {"description": "model version -> records it was trained on"},
    },
}


def _feedback_body() -> dict:
    """multipart `image` + fields, or JSON base64 `image` + fields; a raw image body takes them as query."""
    return {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image", "label"],
                "properties": {"image": {"type": "string", "format": "binary"}, **_FEEDBACK_FIELDS},
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["image", "label"],
                "properties": {
                    "image": {"type": "string", "description": "base64 image; a data: URL prefix is allowed"},
                    **_FEEDBACK_FIELDS,
                },
            }
        },
    }


def _error_responses() -> dict:
    return {
        code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for code, text in _ERRORS.items()
    }


def openapi_spec(max_batch: int) -> dict:
    """The OpenAPI 3.0 document for this gateway."""
    image_body = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "string",
                        "format": "binary",
                        "description": "PNG, JPEG, BMP, WebP or GIF (first frame)",
                    }
                },
            }
        },
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["image"],
                        "properties": {
                            "image": {
                                "type": "string",
                                "description": "base64 image; a data: URL prefix is allowed",
                            },
                            "preprocessing": {"type": "string"},
                            "version": {"type": "integer"},
                            "label": {"type": "string"},
                            "return_processed": {"type": "boolean"},
                            "reject": {"type": "boolean"},
                            "explain": {"type": "boolean"},
                            "explain_values": {"type": "boolean"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["pixels"],
                        "properties": {
                            "pixels": {
                                "type": "array",
                                "items": {"type": "array", "items": {"type": "number"}},
                                "description": _PIXELS_DOC,
                            }
                        },
                    },
                ]
            }
        },
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "MNIST gateway",
            "version": "1.0.0",
            "description": "Preprocesses handwritten-digit images like MNIST and forwards them to "
            "TensorFlow Serving (gRPC or REST).",
        },
        "paths": {
            "/v1/predict": {
                "post": {
                    "summary": "Predict the digit in one image",
                    "parameters": _OPTIONS,
                    "requestBody": {"required": True, "content": image_body},
                    "responses": {
                        "200": {
                            "description": "Prediction",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}
                            },
                        },
                        **_error_responses(),
                    },
                }
            },
            "/v1/predict/batch": {
                "post": {
                    "summary": f"Predict up to {max_batch} images in one model call",
                    "parameters": _OPTIONS,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "images": {
                                            "type": "array",
                                            "items": {"type": "string", "format": "binary"},
                                        }
                                    },
                                }
                            },
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "images": {"type": "array", "items": {"type": "string"}},
                                        "pixels": {"type": "array", "items": {"type": "array"}},
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One result (or error) per image, in order; when no image is "
                            "usable the answer is their 4xx, code batch_failed, with the errors in results",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/BatchPrediction"}
                                }
                            },
                        },
                        **_error_responses(),
                    },
                }
            },
            "/v1/feedback": {
                "post": {
                    "summary": "Store a correction: an image (as for /v1/predict) and the digit it really is",
                    "requestBody": {"required": True, "content": _feedback_body()},
                    "responses": {
                        "201": {
                            "description": "Stored (one transaction); the record without its image bytes",
                            "content": {"application/json": {"schema": _FEEDBACK_RECORD}},
                        },
                        **{
                            code: response
                            for code, response in _error_responses().items()
                            if code in ("400", "413", "415", "422")
                        },
                        "503": {
                            "description": "Feedback database unavailable; nothing stored (Retry-After)",
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                    },
                }
            },
            "/v1/feedback/stats": {
                "get": {
                    "summary": "Corrections stored: by label, by served version, held out, trained on",
                    "responses": {
                        "200": {
                            "description": "Counts",
                            "content": {"application/json": {"schema": _FEEDBACK_STATS}},
                        },
                        "503": {"description": "The feedback database is unavailable"},
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Model versions, states, labels and routing",
                    "responses": {"200": {"description": "Model listing"}, **_error_responses()},
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "Up"}}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: routed version AVAILABLE",
                    "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text"}}}
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "version": {
                                    "type": "integer",
                                    "description": "the model version concerned (409, not_a_digit)",
                                },
                                "digit_score": {"type": "number", "description": "not_a_digit: the score"},
                                "digit": {"type": "integer", "description": "not_a_digit: the best guess"},
                                "confidence": {
                                    "type": "number",
                                    "description": "not_a_digit: its probability",
                                },
                            },
                        }
                    },
                },
                "Model": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "integer"},
                        "label": {"type": "string", "nullable": True},
                    },
                },
                "Prediction": {
                    "type": "object",
                    "properties": {
                        "digit": {"type": "integer"},
                        "confidence": {"type": "number"},
                        "probabilities": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 10,
                            "maxItems": 10,
                        },
                        "model": {"$ref": "#/components/schemas/Model"},
                        "preprocessing": {"type": "string"},
                        "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
                        "is_digit": {
                            "type": "boolean",
                            "nullable": True,
                            "description": "the model's judgement (digit_score >= its threshold); null when "
                            "the version has none",
                        },
                        "digit_score": {
                            "type": "number",
                            "nullable": True,
                            "minimum": 0,
                            "maximum": 1,
                            "description": f"higher = more digit-like; is_digit is digit_score >= "
                            f"{DIGIT_SCORE_CUT}; null when the version has no judgement",
                        },
                        "processed_image": {"type": "string", "description": "base64 PNG (return_processed)"},
                        "explanation": {"$ref": "#/components/schemas/Explanation"},
                    },
                },
                "Explanation": {
                    "type": "object",
                    "description": "explain=true: why the model answered its digit",
                    "properties": {
                        "method": {"type": "string", "enum": [EXPLAIN_METHOD]},
                        "baseline": {"type": "string", "enum": [EXPLAIN_BASELINE]},
                        "steps": {"type": "integer", "enum": [EXPLAIN_STEPS]},
                        "digit": {"type": "integer", "description": "the digit explained"},
                        "heatmap_png": {
                            "type": "string",
                            "description": f"base64 PNG, {28 * UPSCALE}x{28 * UPSCALE}: positive attribution "
                            "as colour over the (dimmed) 28x28 model input, each pixel an "
                            f"{UPSCALE}x{UPSCALE} square",
                        },
                        "values": {
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "number"}},
                            "description": "explain_values=true: the 28x28 attribution",
                        },
                    },
                },
                "BatchPrediction": {
                    "type": "object",
                    "properties": {
                        "results": {
                            "type": "array",
                            "description": "per image, in order: a Prediction's per-image fields, or "
                            "{error, status} (e.g. not_a_digit with reject=true)",
                            "items": {"type": "object"},
                        },
                        "model": {"$ref": "#/components/schemas/Model"},
                    },
                },
            }
        },
    }


_EXAMPLES = """curl -F image=@digit.png http://127.0.0.1:8000/v1/predict
curl -F image=@digit.png 'http://127.0.0.1:8000/v1/predict?preprocessing=standard&return_processed=true'
curl -H 'Content-Type: application/json' -d '{"image": "'"$(base64 -w0 digit.png)"'", "label": "stable"}' \\
     http://127.0.0.1:8000/v1/predict
curl -F images=@a.png -F images=@b.jpg http://127.0.0.1:8000/v1/predict/batch
curl -F image=@star.png -F reject=true http://127.0.0.1:8000/v1/predict
curl -F image=@digit.png 'http://127.0.0.1:8000/v1/predict?explain=true&explain_values=true'
curl http://127.0.0.1:8000/v1/models"""


def docs_html(spec: dict) -> str:
    """A plain HTML rendering of the OpenAPI document."""
    parts = [
        f"<h1>{html.escape(spec['info']['title'])}</h1><p>{html.escape(spec['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
        f"<h2>Examples</h2><pre>{html.escape(_EXAMPLES)}</pre>",
    ]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            parts.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(operation['summary'])}</p>"
            )
            if operation.get("parameters"):
                rows = "".join(
                    f"<tr><td><code>{html.escape(p['name'])}</code></td>"
                    f"<td>{html.escape(str(p['schema'].get('type')))}</td>"
                    f"<td>{html.escape(p.get('description', ''))}</td></tr>"
                    for p in operation["parameters"]
                )
                parts.append(
                    "<p>Options (query string, form field or JSON field):</p>"
                    f"<table><tr><th>name</th><th>type</th><th>meaning</th></tr>{rows}</table>"
                )
            if "requestBody" in operation:
                kinds = ", ".join(html.escape(kind) for kind in operation["requestBody"]["content"])
                parts.append(f"<p>Body: {kinds}</p>")
            rows = "".join(
                f"<tr><td>{code}</td><td>{html.escape(r['description'])}</td></tr>"
                for code, r in operation["responses"].items()
            )
            parts.append(f"<table><tr><th>status</th><th>meaning</th></tr>{rows}</table>")
    style = (
        "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
        "pre{background:#f4f4f4;padding:.5rem;overflow-x:auto}"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MNIST gateway API</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


@docs.get("/openapi.json")
def openapi_json():
    """The OpenAPI document."""
    return jsonify(openapi_spec(current_app.config["GATEWAY"].max_batch_size))


@docs.get("/docs")
def api_docs():
    """Readable API documentation."""
    return Response(
        docs_html(openapi_spec(current_app.config["GATEWAY"].max_batch_size)),
        content_type="text/html; charset=utf-8",
    )
