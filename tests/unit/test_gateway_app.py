"""The gateway app against a fake model server client: request forms, options, routing, errors."""

import base64
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from gateway import create_app
from gateway.config import GatewayConfig
from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from tests.fixtures.digit_images import draw_digit, encode, png_header_only, rgba_canvas
from tests.fixtures.gateway_fakes import FakeCanaryRevisions, FakeServingClient


@pytest.fixture
def fake() -> FakeServingClient:
    return FakeServingClient(versions={1: "AVAILABLE", 2: "AVAILABLE"}, labels={"stable": 1})


def make_app(fake, tmp_path, **overrides):
    config = GatewayConfig(
        routing_file=str(tmp_path / "routing.json"), label_cache_s=overrides.pop("cache", 1.0), **overrides
    )
    return create_app(config, serving_client=fake)


@pytest.fixture
def client(fake, tmp_path):
    return make_app(fake, tmp_path).test_client()


def png_b64(image=None) -> str:
    return base64.b64encode(encode(draw_digit(7) if image is None else image)).decode()


def assert_error(response, status: int, code: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code
    return body


def test_multipart_upload_returns_prediction_from_stable_version(client, fake):
    response = client.post("/v1/predict", data={"image": (io.BytesIO(encode(draw_digit(7))), "seven.png")})
    assert response.status_code == 200
    body = response.get_json()
    assert body["digit"] == 7 and body["confidence"] == pytest.approx(0.9)
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert body["model"] == {"name": "mnist", "version": 1, "label": "stable"}
    assert body["preprocessing"] == "enhanced"
    assert set(body["timings_ms"]) == {"decode", "preprocess", "upstream", "total"}
    images, version, label = fake.predict_calls[-1]
    assert images.shape == (1, 28, 28, 1) and images.dtype == np.float32
    assert (version, label) == (None, "stable")  # TF Serving resolves the label (gRPC)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_json_base64_with_data_url_prefix(client):
    response = client.post("/v1/predict", json={"image": "data:image/png;base64," + png_b64()})
    assert response.status_code == 200 and response.get_json()["digit"] == 7


def test_raw_image_body(client):
    response = client.post("/v1/predict", data=encode(draw_digit(7)), content_type="image/png")
    assert response.status_code == 200


def test_canvas_rgba_upload(client, fake):
    response = client.post("/v1/predict", json={"image": png_b64(rgba_canvas(7))})
    assert response.status_code == 200
    images, *_ = fake.predict_calls[-1]
    assert images[0, 0, 0, 0] == 0.0 and images.max() == pytest.approx(1.0)  # white digit on black


@pytest.mark.parametrize("scale", [1.0, 255])
def test_pixels_are_sent_as_is_with_standard(client, fake, scale):
    pixels = (np.random.default_rng(3).random((28, 28)) * scale).round(3)
    response = client.post("/v1/predict", json={"pixels": pixels.tolist(), "preprocessing": "standard"})
    assert response.status_code == 200
    images, *_ = fake.predict_calls[-1]
    assert np.allclose(images[0, :, :, 0], pixels / scale, atol=1e-6)


def test_standard_preprocessing_option_in_query(client):
    response = client.post("/v1/predict?preprocessing=standard", json={"image": png_b64()})
    assert response.status_code == 200 and response.get_json()["preprocessing"] == "standard"


def test_return_processed_adds_28x28_png(client, fake):
    response = client.post("/v1/predict", json={"image": png_b64(), "return_processed": True})
    processed = Image.open(io.BytesIO(base64.b64decode(response.get_json()["processed_image"])))
    assert processed.size == (28, 28) and processed.mode == "L"
    sent = fake.predict_calls[-1][0][0, :, :, 0]
    assert np.abs(np.asarray(processed) / 255.0 - sent).max() < 0.003


def test_explicit_version_is_used_and_reported(client, fake):
    response = client.post("/v1/predict?version=2", json={"image": png_b64()})
    assert response.get_json()["model"] == {"name": "mnist", "version": 2, "label": None}
    assert fake.predict_calls[-1][1] == 2


def test_label_resolves_to_its_version(fake, tmp_path):
    fake.labels["canary"] = 2
    client = make_app(fake, tmp_path).test_client()
    response = client.post("/v1/predict", json={"image": png_b64(), "label": "canary"})
    assert response.get_json()["model"] == {"name": "mnist", "version": 2, "label": "canary"}


def test_latest_version_when_no_label_configured(tmp_path):
    fake = FakeServingClient(versions={1: "AVAILABLE", 3: "AVAILABLE", 4: "LOADING"}, labels={})
    response = make_app(fake, tmp_path).test_client().post("/v1/predict", json={"image": png_b64()})
    assert response.get_json()["model"] == {"name": "mnist", "version": 3, "label": None}


@pytest.mark.parametrize("by_reply", [True, False], ids=["grpc-like", "rest-like"])
def test_latest_is_unpinned_where_the_reply_names_the_version(tmp_path, by_reply):
    fake = FakeServingClient(
        versions={1: "AVAILABLE", 3: "AVAILABLE"}, labels={}, reply_names_version=by_reply
    )
    client = make_app(fake, tmp_path, default_label="").test_client()
    response = client.post("/v1/predict", json={"image": png_b64()})
    assert response.get_json()["model"] == {"name": "mnist", "version": 3, "label": None}
    # gRPC: a ModelSpec without version or label, TF Serving serves its latest; REST must pin a number.
    assert [call[1:] for call in fake.predict_calls] == [(None, None) if by_reply else (3, None)]
    assert fake.status_calls == (0 if by_reply else 1)


def test_a_kserve_canary_behind_one_target_answers_from_either_revision(tmp_path):
    fake = FakeCanaryRevisions(1, 2)
    client = make_app(fake, tmp_path, default_label="").test_client()
    replies = [client.post("/v1/predict", json={"image": png_b64()}) for _ in range(4)]
    assert [reply.status_code for reply in replies] == [200] * 4
    # One unpinned call per request, so no status answer from one revision can contradict the other.
    assert [reply.get_json()["model"] for reply in replies] == [
        {"name": "mnist", "version": version, "label": None} for version in (1, 2, 1, 2)
    ]
    assert fake.status_calls == 0


def test_explain_during_a_kserve_canary_asks_the_version_that_answered_or_is_503(tmp_path):
    fake = FakeCanaryRevisions(1, 2)
    client = make_app(fake, tmp_path, default_label="").test_client()
    response = client.post("/v1/predict?explain=true", json={"image": png_b64()})
    # Version 1 answered the predict; the explain call reached version 2's revision, which lacks it.
    assert_error(response, 503, "version_unloaded")
    assert [version for _, version in fake.explain_calls] == [1]


@pytest.mark.parametrize("by_reply", [True, False], ids=["grpc-like", "rest-like"])
def test_no_available_version_on_the_latest_route_is_503(tmp_path, by_reply):
    fake = FakeServingClient(versions={1: "LOADING"}, labels={}, reply_names_version=by_reply)
    response = (
        make_app(fake, tmp_path, default_label="")
        .test_client()
        .post("/v1/predict", json={"image": png_b64()})
    )
    assert_error(response, 503, "upstream_unavailable")
    assert response.headers["Retry-After"] == "1"


def test_readyz_resolves_the_latest_to_a_number_without_labels(tmp_path):
    fake = FakeServingClient(versions={1: "AVAILABLE", 3: "AVAILABLE"}, labels={})
    response = make_app(fake, tmp_path, default_label="").test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["model"] == {"name": "mnist", "version": 3, "label": None}


@pytest.mark.parametrize("by_label", [True, False], ids=["grpc-like", "rest-like"])
def test_label_predict_is_one_upstream_call(tmp_path, by_label):
    fake = FakeServingClient(labels={"stable": 1}, reply_names_version=by_label)
    client = make_app(fake, tmp_path).test_client()
    for _ in range(5):
        assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["version"] == 1
    # gRPC names the label in the predict; REST resolves it once per LABEL_CACHE_S.
    assert fake.label_calls == ([] if by_label else ["stable"]) and len(fake.predict_calls) == 5
    assert [call[1:] for call in fake.predict_calls] == [(None, "stable") if by_label else (1, None)] * 5


def test_models_listing_does_not_flush_the_route_cache(tmp_path):
    fake = FakeServingClient(labels={"stable": 1}, reply_names_version=False)
    client = make_app(fake, tmp_path, cache=60.0).test_client()
    client.post("/v1/predict", json={"image": png_b64()})
    for _ in range(3):  # open UI tabs poll this
        assert client.get("/v1/models").status_code == 200
    client.post("/v1/predict", json={"image": png_b64()})
    assert fake.label_calls == ["stable", "canary"]


def test_every_upstream_call_of_a_request_shares_one_deadline(tmp_path):
    fake = FakeServingClient(versions={1: "AVAILABLE", 2: "AVAILABLE"}, labels={}, reply_names_version=False)
    client = make_app(fake, tmp_path, upstream_timeout_s=7.0).test_client()
    # Three upstream calls: resolve "stable" (unknown), list the versions, predict with the latest.
    assert client.post("/v1/predict", json={"image": png_b64()}).status_code == 200
    assert len(fake.deadlines) == 3 and all(deadline is fake.deadlines[0] for deadline in fake.deadlines)
    assert 6.0 < fake.deadlines[0].remaining() <= 7.0


def test_missing_canary_label_falls_back_to_stable_and_is_remembered(fake, tmp_path):
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 100}))
    client = make_app(fake, tmp_path, cache=60.0).test_client()
    for _ in range(3):
        assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["label"] == "stable"
    assert [call[2] for call in fake.predict_calls] == ["canary", "stable", "stable", "stable"]


def test_canary_label_on_a_version_not_served_falls_back_to_stable(fake, tmp_path):
    fake.labels["canary"] = 3  # version 3 is not loaded
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 100}))
    client = make_app(fake, tmp_path, cache=60.0).test_client()
    for _ in range(2):
        response = client.post("/v1/predict", json={"image": png_b64()})
        assert response.status_code == 200 and response.get_json()["model"]["label"] == "stable"
    assert [call[2] for call in fake.predict_calls] == ["canary", "stable", "stable"]
    explicit = client.post("/v1/predict?label=canary", json={"image": png_b64()})
    assert_error(explicit, 404, "unknown_version")


@pytest.mark.parametrize("by_label", [True, False], ids=["grpc-like", "rest-like"])
def test_label_moved_after_caching_is_followed_without_error(tmp_path, by_label):
    fake = FakeServingClient(versions={1: "AVAILABLE", 2: "AVAILABLE"}, reply_names_version=by_label)
    client = make_app(fake, tmp_path, cache=60.0).test_client()
    assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["version"] == 1
    fake.labels["stable"] = 2
    del fake.versions[1]  # version 1 unloaded: a cached route is stale
    response = client.post("/v1/predict", json={"image": png_b64()})
    assert response.status_code == 200 and response.get_json()["model"]["version"] == 2


def test_canary_share_from_routing_file(fake, tmp_path):
    fake.labels["canary"] = 2
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 100}))
    client = make_app(fake, tmp_path).test_client()
    assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["label"] == "canary"
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 0}))
    os.utime(tmp_path / "routing.json", (1, 1))  # a different mtime even within one clock tick
    assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["label"] == "stable"


def test_canary_share_is_roughly_honoured(fake, tmp_path):
    fake.labels["canary"] = 2
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 30}))
    client = make_app(fake, tmp_path).test_client()
    labels = [
        client.post(
            "/v1/predict", json={"pixels": [[0.0] * 28] * 14 + [[1.0] * 28] * 14, "preprocessing": "standard"}
        ).get_json()["model"]["label"]
        for _ in range(300)
    ]
    assert 0.18 < labels.count("canary") / len(labels) < 0.42


def test_batch_multipart_keeps_order_and_uses_one_upstream_call(client, fake):
    files = [
        (io.BytesIO(encode(draw_digit(7))), "a.png"),
        (io.BytesIO(b"garbage"), "b.png"),
        (io.BytesIO(encode(np.full((40, 40), 255, np.uint8))), "c.png"),
        (io.BytesIO(encode(draw_digit(1), "JPEG")), "d.jpg"),
    ]
    response = client.post("/v1/predict/batch", data={"images": files})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [result.get("digit", result.get("error", {}).get("code")) for result in results] == [
        7,
        "not_an_image",
        "no_digit",
        7,
    ]
    assert [result.get("status") for result in results] == [None, 415, 422, None]
    assert len(fake.predict_calls) == 1 and fake.predict_calls[0][0].shape == (2, 28, 28, 1)


@pytest.mark.parametrize(
    ("images", "status"),
    [
        ([b"garbage", b"junk"], 415),
        ([b"garbage", encode(np.full((40, 40), 255, np.uint8))], 400),
    ],
    ids=["all-415", "mixed"],
)
def test_batch_whose_every_item_fails_is_a_4xx_with_per_item_errors(client, fake, images, status):
    files = [(io.BytesIO(data), f"{index}.png") for index, data in enumerate(images)]
    response = client.post("/v1/predict/batch", data={"images": files})
    assert response.status_code == status
    body = response.get_json()
    assert body["error"]["code"] == "batch_failed"
    assert [item["status"] for item in body["results"]] == ([415, 415] if status == 415 else [415, 422])
    assert fake.predict_calls == []


def test_batch_json_pixels(client, fake):
    pixels = [np.eye(28).tolist(), (np.eye(28)[::-1] * 255).tolist()]
    response = client.post("/v1/predict/batch", json={"pixels": pixels, "preprocessing": "standard"})
    assert response.status_code == 200 and len(response.get_json()["results"]) == 2


def test_batch_json_bare_list(client):
    response = client.post("/v1/predict/batch", json=[png_b64(), png_b64()])
    assert response.status_code == 200 and len(response.get_json()["results"]) == 2


def test_batch_over_limit_is_413(fake, tmp_path):
    client = make_app(fake, tmp_path, max_batch_size=3).test_client()
    assert_error(client.post("/v1/predict/batch", json={"images": [png_b64()] * 4}), 413, "batch_too_large")


def test_empty_batch_is_400(client):
    assert_error(client.post("/v1/predict/batch", json={"images": []}), 400, "empty_batch")


def test_models_lists_versions_states_labels(fake, tmp_path):
    fake.labels["canary"] = 2
    fake.versions[3] = "LOADING"
    (tmp_path / "routing.json").write_text(json.dumps({"canary_percent": 10}))
    body = make_app(fake, tmp_path).test_client().get("/v1/models").get_json()
    assert body["versions"] == [
        {"version": 1, "state": "AVAILABLE", "labels": ["stable"]},
        {"version": 2, "state": "AVAILABLE", "labels": ["canary"]},
        {"version": 3, "state": "LOADING", "labels": []},
    ]
    assert body["labels"] == {"stable": 1, "canary": 2}
    assert body["routing"] == {"default": "stable", "canary_percent": 10.0}


def test_healthz_is_up_even_when_upstream_is_down(client, fake):
    fake.failure = UpstreamUnavailable("down")
    assert client.get("/healthz").status_code == 200


def test_readyz_ready_when_routed_version_available(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["model"]["version"] == 1


def test_readyz_503_when_upstream_down(client, fake):
    fake.failure = UpstreamUnavailable("connection refused")
    response = client.get("/readyz")
    assert_error(response, 503, "not_ready")
    assert response.headers["Retry-After"] == "1"


def test_readyz_503_when_routed_version_not_available(tmp_path):
    fake = FakeServingClient(versions={1: "LOADING"}, labels={"stable": 1})
    assert_error(make_app(fake, tmp_path).test_client().get("/readyz"), 503, "not_ready")


def test_readyz_ready_while_one_of_two_model_servers_is_down(client, fake):
    fake.backends = {"127.0.0.1:8500": None, "127.0.0.1:8510": {1: "AVAILABLE"}}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["backends"] == {"127.0.0.1:8500": "DOWN", "127.0.0.1:8510": "AVAILABLE"}


def test_readyz_503_when_no_model_server_has_the_routed_version_available(client, fake):
    fake.backends = {"127.0.0.1:8500": None, "127.0.0.1:8510": {1: "LOADING"}}
    response = client.get("/readyz")
    assert_error(response, 503, "not_ready")
    assert response.get_json()["error"]["backends"] == {"127.0.0.1:8500": "DOWN", "127.0.0.1:8510": "LOADING"}
    assert "connection refused" in response.get_json()["error"]["message"]


def test_models_shows_each_model_servers_own_versions(client, fake):
    fake.backends = {"127.0.0.1:8500": {1: "AVAILABLE", 2: "LOADING"}, "127.0.0.1:8510": None}
    body = client.get("/v1/models").get_json()
    assert body["backends"] == [
        {
            "address": "127.0.0.1:8500",
            "up": True,
            "versions": [{"version": 1, "state": "AVAILABLE"}, {"version": 2, "state": "LOADING"}],
        },
        {
            "address": "127.0.0.1:8510",
            "up": False,
            "versions": [],
            "error": "model server unavailable: connection refused",
        },
    ]


def test_upstream_down_is_503_with_retry_after(client, fake):
    fake.failure = UpstreamUnavailable("connection refused")
    response = client.post("/v1/predict", json={"image": png_b64()})
    assert_error(response, 503, "upstream_unavailable")
    assert response.headers["Retry-After"] == "1"


def test_upstream_timeout_is_504(client, fake):
    client.post("/v1/predict", json={"image": png_b64()})  # label cached while the server is fine
    fake.failure = UpstreamTimeout("slow")
    assert_error(client.post("/v1/predict", json={"image": png_b64()}), 504, "upstream_timeout")


def test_unknown_version_is_404(client):
    assert_error(client.post("/v1/predict?version=9", json={"image": png_b64()}), 404, "unknown_version")


def test_unknown_label_is_404(client):
    assert_error(client.post("/v1/predict?label=nope", json={"image": png_b64()}), 404, "unknown_label")


def test_blank_canvas_returns_422(client):
    blank = np.zeros((280, 280, 4), np.uint8)
    assert_error(client.post("/v1/predict", json={"image": png_b64(blank)}), 422, "no_digit")


BAD_REQUESTS = [
    # (description, kwargs for client.post, expected status)
    ("empty body", {}, 400),
    ("empty json body", {"data": b"", "content_type": "application/json"}, 400),
    ("malformed json", {"data": b"{not json", "content_type": "application/json"}, 400),
    (
        "deeply nested json",
        {"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"},
        400,
    ),
    ("json array", {"json": [1, 2, 3]}, 400),
    ("json string", {"json": "hello"}, 400),
    ("image not a string", {"json": {"image": 12}}, 400),
    ("image a list", {"json": {"image": ["a"]}}, 400),
    ("both image and pixels", {"json": {"image": "aGk=", "pixels": [[0]]}}, 400),
    ("neither image nor pixels", {"json": {"foo": 1}}, 400),
    ("bad base64", {"json": {"image": "!!!not base64!!!"}}, 400),
    ("empty base64", {"json": {"image": ""}}, 400),
    ("base64 of random bytes", {"json": {"image": base64.b64encode(bytes(range(256))).decode()}}, 415),
    ("base64 of text", {"json": {"image": base64.b64encode(b"hello world").decode()}}, 415),
    ("truncated png", {"json": {"image": base64.b64encode(encode(draw_digit(7))[:300]).decode()}}, 400),
    ("huge dimensions", {"json": {"image": base64.b64encode(png_header_only(60_000, 60_000)).decode()}}, 413),
    ("pixels NaN", {"data": b'{"pixels": [[NaN]]}', "content_type": "application/json"}, 422),
    (
        "pixels NaN 28x28",
        {
            "data": json.dumps({"pixels": [[float("nan")] * 28] * 28}).encode(),
            "content_type": "application/json",
        },
        422,
    ),
    ("pixels strings", {"json": {"pixels": [["a"] * 28] * 28}}, 422),
    ("pixels wrong shape", {"json": {"pixels": [[0] * 5] * 5}}, 422),
    ("pixels ragged", {"json": {"pixels": [[0] * 28, [0] * 3]}}, 422),
    ("pixels a number", {"json": {"pixels": 5}}, 422),
    ("pixels out of range", {"json": {"pixels": [[300] * 28] * 28}}, 422),
    ("bad preprocessing", {"json": {"pixels": [[0] * 28] * 28, "preprocessing": "magic"}}, 400),
    ("preprocessing not a string", {"json": {"pixels": [[0] * 28] * 28, "preprocessing": 3}}, 400),
    ("version a float", {"json": {"pixels": [[0] * 28] * 28, "version": 1.5}}, 400),
    ("version negative", {"json": {"pixels": [[0] * 28] * 28, "version": -1}}, 400),
    ("version bool", {"json": {"pixels": [[0] * 28] * 28, "version": True}}, 400),
    ("version huge", {"json": {"pixels": [[0] * 28] * 28, "version": 2**70}}, 400),
    ("version and label", {"json": {"pixels": [[0] * 28] * 28, "version": 1, "label": "stable"}}, 400),
    ("label with slash", {"json": {"pixels": [[0] * 28] * 28, "label": "../x"}}, 400),
    ("return_processed junk", {"json": {"pixels": [[0] * 28] * 28, "return_processed": "maybe"}}, 400),
    ("text/plain body", {"data": b"hello", "content_type": "text/plain"}, 415),
    ("multipart without image", {"data": {"other": (b"x", "x.png")}}, 400),
    ("multipart random bytes", {"data": {"image": (bytes(range(256)) * 8, "x.png")}}, 415),
    ("raw random bytes", {"data": bytes(range(256)) * 8, "content_type": "image/png"}, 415),
    ("raw empty image", {"data": b"", "content_type": "image/png"}, 400),
    ("tiff upload", {"data": encode(draw_digit(7), "TIFF"), "content_type": "image/tiff"}, 415),
]


def fresh(kwargs: dict) -> dict:
    """The request kwargs with (bytes, filename) form values turned into new file objects."""
    data = kwargs.get("data")
    if isinstance(data, dict):
        data = {name: (io.BytesIO(value[0]), value[1]) for name, value in data.items()}
        return {**kwargs, "data": data}
    return kwargs


@pytest.mark.parametrize(("description", "kwargs", "status"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_a_json_4xx(client, description, kwargs, status):
    response = client.post("/v1/predict", **fresh(kwargs))
    assert_error(response, status)


def test_service_keeps_serving_after_bad_input(client):
    for _, kwargs, _ in BAD_REQUESTS:
        client.post("/v1/predict", **fresh(kwargs))
    assert client.post("/v1/predict", json={"image": png_b64()}).status_code == 200


def test_upload_over_byte_limit_is_413(fake, tmp_path):
    client = make_app(fake, tmp_path, max_upload_bytes=1000).test_client()
    big = encode(np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8))
    assert_error(client.post("/v1/predict", data={"image": (io.BytesIO(big), "big.png")}), 413)
    assert_error(client.post("/v1/predict", json={"image": base64.b64encode(big).decode()}), 413)


def test_request_over_body_limit_is_413(fake, tmp_path):
    client = make_app(fake, tmp_path, max_request_bytes=10_000).test_client()
    assert_error(client.post("/v1/predict", data=b"x" * 20_000, content_type="image/png"), 413)


def test_single_predict_body_is_held_to_one_image_before_it_is_read(client, fake):
    # 31.5 MB of pixels, under the 32 MB batch limit: one image's route refuses it from Content-Length.
    body = b'{"pixels": [' + b"0," * (31_500_000 // 2) + b"0]}"
    assert_error(
        client.post("/v1/predict", data=body, content_type="application/json"), 413, "body_too_large"
    )
    assert fake.predict_calls == []


def test_pixels_batch_over_what_its_arrays_take_is_413_before_parsing(client):
    # Under MAX_REQUEST_BYTES but far over 64 28x28 arrays; not even valid JSON, so no parse happened.
    body = b'{"pixels": [[' + b"0," * 2_500_000 + b"oops"
    response = client.post("/v1/predict/batch", data=body, content_type="application/json")
    assert_error(response, 413, "body_too_large")


def test_batch_body_is_held_to_its_images_worth(fake, tmp_path):
    client = make_app(fake, tmp_path, max_batch_size=2, max_upload_bytes=1000).test_client()
    body = b"--b\r\n" + b"x" * 100_000  # 2 x (base64 of 1000 bytes + 16 KiB) is about 35 KB
    response = client.post("/v1/predict/batch", data=body, content_type="multipart/form-data; boundary=b")
    assert_error(response, 413, "body_too_large")


def test_escaped_pixels_key_is_held_to_the_same_limit(client):
    body = json.dumps({"pix\\u0065ls": [[[0] * 28] * 28] * 64, "pad": "x" * 3_000_000}).encode()
    body = body.replace(b"\\\\u0065", b"\\u0065")
    assert b'"pixels"' not in body
    response = client.post("/v1/predict/batch", data=body, content_type="application/json")
    assert_error(response, 413, "body_too_large")


def test_full_precision_pixels_batch_fits_its_limit(client, fake):
    rng = np.random.default_rng(5)
    pixels = [rng.random((28, 28)).tolist() for _ in range(64)]
    response = client.post("/v1/predict/batch", json={"pixels": pixels, "preprocessing": "standard"})
    assert response.status_code == 200 and len(response.get_json()["results"]) == 64


@pytest.mark.parametrize("shape", [(27, 28), (56, 56), (28, 28, 2)])
def test_pixels_other_than_one_28x28_array_are_422(client, shape):
    pixels = np.zeros(shape).tolist()
    assert_error(client.post("/v1/predict", json={"pixels": pixels}), 422, "bad_pixels")


def test_image_pixel_limit_is_413(fake, tmp_path):
    client = make_app(fake, tmp_path, max_image_pixels=10_000).test_client()
    assert_error(
        client.post("/v1/predict", json={"image": png_b64(draw_digit(7, size=(200, 200)))}),
        413,
        "image_too_large",
    )


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/nope"), 404)
    assert_error(client.get("/v1/predict"), 405)


def test_metrics_count_requests_predictions_and_version(client):
    client.post("/v1/predict", json={"image": png_b64()})
    client.post("/v1/predict", json={"image": "@@@"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_requests_total{method="POST",route="/v1/predict",status="200"} 1.0' in text
    assert 'gateway_requests_total{method="POST",route="/v1/predict",status="400"} 1.0' in text
    assert 'gateway_predictions_total{digit="7",version="1"} 1.0' in text
    assert 'gateway_model_version{label="stable"} 1.0' in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert 'gateway_upstream_duration_seconds_count{call="predict",transport="fake"} 1.0' in text


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/v1/predict" in spec["paths"]
    page = client.get("/docs")
    assert page.status_code == 200 and "/v1/predict/batch" in page.get_data(as_text=True)


def test_two_apps_in_one_process_do_not_share_metrics(fake, tmp_path):
    first, second = make_app(fake, tmp_path).test_client(), make_app(fake, tmp_path).test_client()
    first.post("/v1/predict", json={"image": png_b64()})
    assert "gateway_predictions_total{" not in second.get("/metrics").get_data(as_text=True)


def test_invalid_routing_file_keeps_the_last_good_canary_share(fake, tmp_path):
    fake.labels["canary"] = 2
    routing = tmp_path / "routing.json"
    routing.write_text(json.dumps({"canary_percent": 100}))
    client = make_app(fake, tmp_path).test_client()
    assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["label"] == "canary"
    routing.write_text('{"canary_percent": 1')  # half-written
    os.utime(routing, (1, 1))
    assert client.get("/v1/models").get_json()["routing"]["canary_percent"] == 100.0
    assert client.post("/v1/predict", json={"image": png_b64()}).get_json()["model"]["label"] == "canary"
