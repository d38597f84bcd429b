"""The real gateway (gunicorn) in front of the real local model server: API, metrics, bad-input suite."""

import base64
import json
import os
import random

import numpy as np
import pytest
import requests

from tests.fixtures.digit_images import draw_digit, encode, png_header_only, rgba_canvas
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import start_stable_and_canary_server

TIMEOUT_S = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Model server (v1 stable, v2 canary) + one gunicorn gateway per transport."""
    root = tmp_path_factory.mktemp("gateway_service")
    server = start_stable_and_canary_server(root)
    gateways = {}
    try:
        for transport in ("grpc", "rest"):
            env = gateway_env(
                server.grpc_port,
                server.rest_port,
                transport,
                ROUTING_FILE=str(root / "routing.json"),
                MAX_BATCH_SIZE="8",
            )
            gateways[transport] = start_gateway(root, env, name=f"gateway_{transport}")
        yield {"server": server, "gateways": gateways, "root": root}
    finally:
        for gateway in gateways.values():
            gateway.stop()
        server.stop()


@pytest.fixture(params=["grpc", "rest"])
def url(stack, request) -> str:
    return stack["gateways"][request.param].url


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_png_upload_is_predicted_by_stable(url):
    response = requests.post(
        f"{url}/v1/predict", files={"image": ("7.png", encode(draw_digit(7)), "image/png")}, timeout=TIMEOUT_S
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "mnist", "version": 1, "label": "stable"}
    assert 0 <= body["digit"] <= 9 and len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-3 and body["confidence"] == max(body["probabilities"])


def test_grpc_and_rest_gateways_agree(stack):
    payload = {"image": b64(encode(rgba_canvas(4))), "preprocessing": "enhanced"}
    answers = [
        requests.post(f"{gateway.url}/v1/predict", json=payload, timeout=TIMEOUT_S).json()
        for gateway in stack["gateways"].values()
    ]
    assert answers[0]["digit"] == answers[1]["digit"]
    assert np.allclose(answers[0]["probabilities"], answers[1]["probabilities"], atol=1e-6)


def test_label_and_version_options(url):
    image = b64(encode(draw_digit(1)))
    by_label = requests.post(f"{url}/v1/predict", json={"image": image, "label": "canary"}, timeout=TIMEOUT_S)
    by_version = requests.post(f"{url}/v1/predict?version=2", json={"image": image}, timeout=TIMEOUT_S)
    assert by_label.json()["model"] == {"name": "mnist", "version": 2, "label": "canary"}
    assert by_version.json()["model"] == {"name": "mnist", "version": 2, "label": None}
    assert (
        requests.post(f"{url}/v1/predict?version=7", json={"image": image}, timeout=TIMEOUT_S).status_code
        == 404
    )
    assert (
        requests.post(f"{url}/v1/predict?label=x", json={"image": image}, timeout=TIMEOUT_S).status_code
        == 404
    )


def test_batch_is_in_order_with_per_image_errors(url):
    files = [
        ("images", ("a.png", encode(draw_digit(7)), "image/png")),
        ("images", ("b.png", b"nope", "image/png")),
        ("images", ("c.jpg", encode(draw_digit(1), "JPEG"), "image/jpeg")),
    ]
    response = requests.post(f"{url}/v1/predict/batch?return_processed=true", files=files, timeout=TIMEOUT_S)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3 and "digit" in results[0] and results[1]["error"]["code"] == "not_an_image"
    assert "processed_image" in results[2]


def test_models_listing(url):
    body = requests.get(f"{url}/v1/models", timeout=TIMEOUT_S).json()
    assert [(v["version"], v["state"], v["labels"]) for v in body["versions"]] == [
        (1, "AVAILABLE", ["stable"]),
        (2, "AVAILABLE", ["canary"]),
    ]


def test_canary_share_follows_the_routing_file(stack):
    routing = stack["root"] / "routing.json"
    url = stack["gateways"]["grpc"].url
    payload = {"pixels": np.eye(28).tolist(), "preprocessing": "standard"}
    try:
        routing.write_text(json.dumps({"canary_percent": 50}))
        versions = [
            requests.post(f"{url}/v1/predict", json=payload, timeout=TIMEOUT_S).json()["model"]["version"]
            for _ in range(120)
        ]
        assert 30 <= versions.count(2) <= 90
    finally:
        routing.unlink()


def test_metrics_aggregate_both_workers(url):
    for _ in range(6):
        requests.post(f"{url}/v1/predict", json={"image": b64(encode(draw_digit(7)))}, timeout=TIMEOUT_S)
    text = requests.get(f"{url}/metrics", timeout=TIMEOUT_S).text
    assert "gateway_requests_total" in text and "gateway_upstream_duration_seconds_bucket" in text
    assert "gateway_predictions_total" in text and 'gateway_model_version{label="stable"} 1.0' in text


def test_readyz_and_docs(url):
    assert requests.get(f"{url}/readyz", timeout=TIMEOUT_S).json()["model"]["version"] == 1
    assert requests.get(f"{url}/openapi.json", timeout=TIMEOUT_S).json()["openapi"].startswith("3.")
    assert "MNIST gateway" in requests.get(f"{url}/docs", timeout=TIMEOUT_S).text


def bad_requests() -> list[tuple[str, dict]]:
    """Hostile and broken requests, each must get a JSON 4xx."""
    rng = random.Random(7)
    png = encode(draw_digit(7))
    cases = [
        (
            f"random bytes {n}",
            {"data": bytes(rng.getrandbits(8) for _ in range(n)), "headers": {"Content-Type": "image/png"}},
        )
        for n in (1, 17, 4096)
    ]
    cases += [
        (f"random multipart {n}", {"files": {"image": ("x.png", os.urandom(n), "image/png")}})
        for n in (10, 5000)
    ]
    cases += [
        ("truncated png", {"files": {"image": ("t.png", png[: len(png) // 3], "image/png")}}),
        ("png header only", {"files": {"image": ("h.png", png[:8], "image/png")}}),
        ("huge dimensions", {"files": {"image": ("bomb.png", png_header_only(80_000, 80_000), "image/png")}}),
        ("empty body", {}),
        ("empty multipart file", {"files": {"image": ("e.png", b"", "image/png")}}),
        ("wrong field name", {"files": {"picture": ("p.png", png, "image/png")}}),
        ("json null", {"data": b"null", "headers": {"Content-Type": "application/json"}}),
        ("json wrong types", {"json": {"image": {"nested": True}}}),
        (
            "json pixels NaN",
            {"data": b'{"pixels": [[NaN, 1], [1, 1]]}', "headers": {"Content-Type": "application/json"}},
        ),
        (
            "json pixels Infinity",
            {
                "data": json.dumps({"pixels": [[float("inf")] * 28] * 28}).encode(),
                "headers": {"Content-Type": "application/json"},
            },
        ),
        ("json pixels strings", {"json": {"pixels": [["x"] * 28] * 28}}),
        ("json pixels 3 levels", {"json": {"pixels": [[[1, 2]] * 28] * 28}}),
        ("json bad base64", {"json": {"image": "%%%%"}}),
        ("json base64 garbage", {"json": {"image": b64(os.urandom(300))}}),
        ("malformed json", {"data": b'{"image": ', "headers": {"Content-Type": "application/json"}}),
        (
            "invalid utf-8 json",
            {"data": b'{"image": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
        ),
        (
            "deep json",
            {"data": b"[" * 50_000 + b"]" * 50_000, "headers": {"Content-Type": "application/json"}},
        ),
        ("bad option", {"json": {"image": b64(png), "preprocessing": ["x"]}}),
        ("bad version", {"json": {"image": b64(png), "version": "one"}}),
        ("text body", {"data": b"hello", "headers": {"Content-Type": "text/plain"}}),
        ("batch too large", {"json": {"images": [b64(png)] * 9}, "path": "/v1/predict/batch"}),
        ("batch not a list", {"json": {"images": "abc"}, "path": "/v1/predict/batch"}),
        ("oversized body", {"data": b"0" * (40 * 1024 * 1024), "headers": {"Content-Type": "image/png"}}),
    ]
    return cases


BAD = bad_requests()


@pytest.mark.parametrize(("name", "kwargs"), BAD, ids=[name for name, _ in BAD])
def test_bad_input_is_a_json_4xx(url, name, kwargs):
    kwargs = dict(kwargs)
    path = kwargs.pop("path", "/v1/predict")
    response = requests.post(f"{url}{path}", timeout=TIMEOUT_S, **kwargs)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
    assert set(response.json()) == {"error"}


def test_still_serving_after_the_bad_input_suite(url):
    for _ in range(4):
        response = requests.post(
            f"{url}/v1/predict",
            files={"image": ("7.png", encode(draw_digit(7)), "image/png")},
            timeout=TIMEOUT_S,
        )
        assert response.status_code == 200
    text = requests.get(f"{url}/metrics", timeout=TIMEOUT_S).text
    assert 'status="500"' not in text
