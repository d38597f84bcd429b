"""POST /v1/feedback and GET /v1/feedback/stats through the Flask test client, on a tmp SQLite file."""

import base64
import io

import numpy as np
import pytest
import sqlalchemy as sa

from contract.feedback import input_from_bytes
from gateway import create_app
from gateway.config import GatewayConfig
from gateway.feedback.schema import feedback
from gateway.preprocess import decode_image, preprocess
from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_fakes import FakeServingClient
from tests.support.feedback_store import post_concurrently

SEVEN_PNG = encode(draw_digit(7))
BLANK_PNG = encode(np.zeros((64, 64), dtype=np.uint8))


@pytest.fixture
def app(tmp_path):
    config = GatewayConfig(
        routing_file=str(tmp_path / "routing.json"),
        feedback_database_url=f"sqlite:///{tmp_path}/feedback.sqlite3",
        max_upload_bytes=64 * 1024,
    )
    app = create_app(config, serving_client=FakeServingClient())
    yield app
    app.extensions["gateway.feedback"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def stored_rows(app) -> list:
    store = app.extensions["gateway.feedback"]
    store.ensure_schema()  # a rejected first request never reaches the store
    with store.engine.connect() as connection:
        return connection.execute(sa.select(feedback).order_by(feedback.c.id)).all()


def metric(client, name: str, **labels) -> float:
    """One sample's value from /metrics (0 when the series does not exist yet)."""
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(f"{name}{{{selector}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    assert body["error"]["code"] == code


def multipart(image: bytes = SEVEN_PNG, **fields):
    return {"image": (io.BytesIO(image), "digit.png"), **{k: str(v) for k, v in fields.items()}}


def test_multipart_correction_returns_201_and_stores_upload_and_model_input(client, app):
    response = client.post(
        "/v1/feedback", data=multipart(label=7, predicted=1, version=2, preprocessing="standard")
    )
    assert response.status_code == 201
    record = response.get_json()
    assert record["label"] == 7 and record["predicted"] == 1 and record["version"] == 2
    assert record["preprocessing"] == "standard" and isinstance(record["held_out"], bool)
    assert "upload" not in record and "model_input" not in record
    [row] = stored_rows(app)
    assert row.id == record["id"] and row.upload == SEVEN_PNG
    expected = preprocess(decode_image(SEVEN_PNG, max_pixels=10**6), "standard")
    np.testing.assert_array_equal(input_from_bytes(row.model_input), expected.reshape(28, 28))


def test_json_base64_correction_defaults_to_enhanced_and_no_version(client, app):
    body = {"image": base64.b64encode(SEVEN_PNG).decode(), "label": 3}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 201
    record = response.get_json()
    assert (record["label"], record["predicted"], record["version"]) == (3, None, None)
    assert record["preprocessing"] == "enhanced"
    assert len(stored_rows(app)) == 1


def test_raw_image_body_takes_fields_from_the_query(client):
    response = client.post("/v1/feedback?label=4", data=SEVEN_PNG, content_type="image/png")
    assert response.status_code == 201 and response.get_json()["label"] == 4


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"data": multipart()}, 400, "missing_label"),
        ({"json": {"image": base64.b64encode(SEVEN_PNG).decode()}}, 400, "missing_label"),
        ({"data": multipart(label=10)}, 400, "bad_option"),
        ({"data": multipart(label=-1)}, 400, "bad_option"),
        ({"data": multipart(label="seven")}, 400, "bad_option"),
        ({"json": {"image": base64.b64encode(SEVEN_PNG).decode(), "label": 7.0}}, 400, "bad_option"),
        ({"json": {"image": base64.b64encode(SEVEN_PNG).decode(), "label": True}}, 400, "bad_option"),
        ({"data": multipart(label=7, predicted=11)}, 400, "bad_option"),
        ({"data": multipart(label=7, version=0)}, 400, "bad_option"),
        ({"data": multipart(label=7, preprocessing="fancy")}, 400, "bad_option"),
        ({"data": {"label": "7"}, "content_type": "multipart/form-data"}, 400, "missing_image"),
        ({"json": {"pixels": [[0] * 28] * 28, "label": 7}}, 400, "missing_image"),
        ({"json": {"image": "not base64!!", "label": 7}}, 400, "bad_base64"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": multipart(image=SEVEN_PNG[: len(SEVEN_PNG) // 2], label=7)}, 400, "corrupt_image"),
        ({"data": multipart(image=b"plain text, no image", label=7)}, 415, "not_an_image"),
        ({"data": b"label=7", "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": multipart(image=b"\x89PNG" + bytes(70 * 1024), label=7)}, 413, "upload_too_large"),
        ({"data": multipart(image=BLANK_PNG, label=7)}, 422, "no_digit"),
    ],
    ids=[
        "no_label_multipart",
        "no_label_json",
        "label_10",
        "label_negative",
        "label_word",
        "label_float",
        "label_bool",
        "predicted_11",
        "version_0",
        "unknown_preprocessing",
        "no_image",
        "pixels_are_no_upload",
        "bad_base64",
        "malformed_json",
        "corrupt_image",
        "not_an_image",
        "text_body",
        "upload_over_limit",
        "blank_image_no_digit",
    ],
)
def test_bad_feedback_is_a_json_4xx_and_stores_nothing(client, app, request_kwargs, status, code):
    rejected_before = metric(client, "gateway_feedback_rejected_total", code=code)
    assert_error(client.post("/v1/feedback", **request_kwargs), status, code)
    assert stored_rows(app) == []
    assert metric(client, "gateway_feedback_rejected_total", code=code) == rejected_before + 1


def test_body_over_one_image_is_413_before_reading(client, app):
    response = client.post(
        "/v1/feedback", data=b"x" * 200 * 1024, content_type="image/png", headers={"Content-Length": "204800"}
    )
    assert_error(response, 413, "body_too_large")
    assert stored_rows(app) == []


def test_received_counter_moves_by_label(client):
    before = metric(client, "gateway_feedback_received_total", label="5")
    for _ in range(2):
        assert client.post("/v1/feedback", data=multipart(label=5)).status_code == 201
    assert client.post("/v1/feedback", data=multipart(label=6)).status_code == 201
    assert metric(client, "gateway_feedback_received_total", label="5") == before + 2


def test_stats_count_what_was_posted(client):
    for label, version in [(7, 2), (7, None), (2, 2)]:
        fields = {"label": label} | ({"version": version} if version else {})
        assert client.post("/v1/feedback", data=multipart(**fields)).status_code == 201
    assert client.post("/v1/feedback", data=multipart(label=99)).status_code == 400
    stats = client.get("/v1/feedback/stats").get_json()
    assert stats["total"] == 3 and stats["by_label"]["7"] == 2 and stats["by_label"]["2"] == 1
    assert stats["by_version"] == {"2": 2} and stats["version_unknown"] == 1
    assert 0 <= stats["held_out"] <= 3 and stats["trained_on"] == {}


def test_stats_on_an_empty_store(client):
    stats = client.get("/v1/feedback/stats").get_json()
    assert stats["total"] == 0 and set(stats["by_label"]) == {str(d) for d in range(10)}


def test_unreachable_database_is_a_503_with_retry_after(tmp_path):
    (tmp_path / "a_file").write_text("")
    config = GatewayConfig(
        routing_file=str(tmp_path / "routing.json"),
        # A directory path under a regular file: SQLite cannot open it.
        feedback_database_url=f"sqlite:///{tmp_path}/a_file/feedback.sqlite3",
    )
    client = create_app(config, serving_client=FakeServingClient()).test_client()
    response = client.post("/v1/feedback", data=multipart(label=7))
    assert_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == "1"


def test_concurrent_posts_are_all_stored(app):
    threads, per_thread = 8, 25

    def post(thread: int, i: int):
        response = app.test_client().post("/v1/feedback", data=multipart(label=(thread + i) % 10))
        assert response.status_code == 201, response.get_data(as_text=True)

    stored, seconds = post_concurrently(post, threads, per_thread)
    assert stored == threads * per_thread == len(stored_rows(app))
    assert app.test_client().get("/v1/feedback/stats").get_json()["total"] == stored
    print(f"\nsqlite through the app: {stored} posts from {threads} threads, {stored / seconds:.0f}/s")


def test_openapi_documents_both_feedback_paths(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    post = paths["/v1/feedback"]["post"]
    assert set(post["responses"]) >= {"201", "400", "413", "415", "422", "503"}
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["image", "label"] and schema["properties"]["label"]["maximum"] == 9
    assert "200" in paths["/v1/feedback/stats"]["get"]["responses"]
    assert "/v1/feedback" in client.get("/docs").get_data(as_text=True)
