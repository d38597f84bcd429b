"""The gateway's digit judgement, reject=true and explain=true against a fake model server client."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from contract.mnist import EXPLAIN_BASELINE, EXPLAIN_METHOD, EXPLAIN_STEPS
from gateway import create_app
from gateway.config import GatewayConfig
from gateway.errors import UpstreamTimeout
from gateway.heatmap import UPSCALE
from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_fakes import FakeServingClient

OLD, NEW = 1, 2  # version 1 as exported before the judgement and explain existed; version 2 has both


def png_b64(digit: int = 7) -> str:
    return base64.b64encode(encode(draw_digit(digit))).decode()


def make_client(tmp_path, stable: int = NEW, **fake_options):
    fake = FakeServingClient(
        versions={OLD: "AVAILABLE", NEW: "AVAILABLE"},
        labels={"stable": stable},
        judged={NEW},
        explainable={NEW},
        **fake_options,
    )
    app = create_app(GatewayConfig(routing_file=str(tmp_path / "routing.json")), serving_client=fake)
    return app.test_client(), fake


@pytest.fixture
def client_and_fake(tmp_path):
    return make_client(tmp_path)


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------- is_digit / digit_score


def test_judged_version_results_carry_is_digit_and_digit_score(client_and_fake):
    client, fake = client_and_fake
    fake.digit_score = 0.8
    body = client.post("/v1/predict", json={"image": png_b64()}).get_json()
    assert body["is_digit"] is True and body["digit_score"] == pytest.approx(0.8)
    assert body["confidence"] == pytest.approx(body["probabilities"][body["digit"]])


def test_non_digit_is_still_answered_200_without_reject(client_and_fake):
    client, fake = client_and_fake
    fake.digit_score = 0.1
    response = client.post("/v1/predict", json={"image": png_b64()})
    assert response.status_code == 200
    assert response.get_json()["is_digit"] is False and response.get_json()["digit_score"] == pytest.approx(
        0.1
    )


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch"])
def test_version_without_judgement_answers_null_never_a_made_up_one(tmp_path, route):
    client, _ = make_client(tmp_path, stable=OLD)
    payload = {"image": png_b64()} if route == "/v1/predict" else {"images": [png_b64(), png_b64(1)]}
    body = client.post(route, json=payload).get_json()
    results = [body] if route == "/v1/predict" else body["results"]
    assert body["model"]["version"] == OLD
    for result in results:
        assert "is_digit" in result and result["is_digit"] is None
        assert "digit_score" in result and result["digit_score"] is None


def test_batch_slots_carry_their_own_judgement(client_and_fake):
    client, fake = client_and_fake
    fake.digit_scores = [0.9, 0.2, 0.6]
    body = client.post("/v1/predict/batch", json={"images": [png_b64()] * 3}).get_json()
    assert [r["is_digit"] for r in body["results"]] == [True, False, True]
    assert [r["digit_score"] for r in body["results"]] == pytest.approx([0.9, 0.2, 0.6])


# ---------------------------------------------------------------- reject=true


@pytest.mark.parametrize("where", ["query", "json", "form"])
def test_reject_true_turns_a_non_digit_into_422_not_a_digit(client_and_fake, where):
    client, fake = client_and_fake
    fake.digit_score, fake.digit, fake.confidence = 0.12, 3, 0.6
    if where == "query":
        response = client.post("/v1/predict?reject=true", json={"image": png_b64()})
    elif where == "json":
        response = client.post("/v1/predict", json={"image": png_b64(), "reject": True})
    else:
        data = {"image": (io.BytesIO(encode(draw_digit(7))), "x.png"), "reject": "yes"}
        response = client.post("/v1/predict", data=data)
    error = error_of(response, 422, "not_a_digit")
    assert error["digit_score"] == pytest.approx(0.12)
    assert error["digit"] == 3 and error["confidence"] == pytest.approx(0.6) and error["version"] == NEW
    assert "not look like a digit" in error["message"]


def test_reject_true_passes_a_digit(client_and_fake):
    client, fake = client_and_fake
    fake.digit_score = 0.5  # the cut itself counts as a digit (digit_score >= DIGIT_SCORE_CUT)
    response = client.post("/v1/predict?reject=1", json={"image": png_b64()})
    assert response.status_code == 200 and response.get_json()["is_digit"] is True


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch"])
def test_reject_against_a_version_without_judgement_is_409_naming_it(tmp_path, route):
    client, _ = make_client(tmp_path, stable=OLD)
    payload = {"image": png_b64()} if route == "/v1/predict" else {"images": [png_b64()]}
    error = error_of(client.post(f"{route}?reject=true", json=payload), 409, "judgement_unavailable")
    assert error["version"] == OLD and f"version {OLD}" in error["message"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query_string": {"reject": "maybe"}},
        {"json_extra": {"reject": 1}},
        {"json_extra": {"reject": "sure"}},
        {"query_string": {"explain": "2"}},
        {"query_string": {"explain_values": "true"}},  # raw values without the explanation they belong to
    ],
)
def test_bad_reject_or_explain_value_is_400_bad_option(client_and_fake, kwargs):
    client, fake = client_and_fake
    body = {"image": png_b64(), **kwargs.get("json_extra", {})}
    response = client.post("/v1/predict", json=body, query_string=kwargs.get("query_string"))
    error_of(response, 400, "bad_option")
    assert fake.predict_calls == []


def test_batch_reject_makes_a_not_a_digit_slot_and_the_others_answer(client_and_fake):
    client, fake = client_and_fake
    fake.digit_scores = [0.9, 0.1]
    images = [png_b64(), png_b64(), "not base64!"]
    response = client.post("/v1/predict/batch", json={"images": images, "reject": "true"})
    assert response.status_code == 200
    good, rejected, unreadable = response.get_json()["results"]
    assert good["is_digit"] is True and good["digit"] == 7
    assert rejected["status"] == 422 and rejected["error"]["code"] == "not_a_digit"
    assert rejected["error"]["digit_score"] == pytest.approx(0.1) and rejected["error"]["digit"] == 7
    assert unreadable["status"] == 400


def test_batch_whose_every_slot_is_rejected_is_422_batch_failed(client_and_fake):
    client, fake = client_and_fake
    fake.digit_score = 0.2
    response = client.post("/v1/predict/batch?reject=true", json={"images": [png_b64(), png_b64(1)]})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "batch_failed"
    assert [slot["error"]["code"] for slot in body["results"]] == ["not_a_digit", "not_a_digit"]


def test_rejections_are_counted_by_reason_and_version(client_and_fake):
    client, fake = client_and_fake
    fake.digit_score = 0.2
    for _ in range(2):
        client.post("/v1/predict?reject=true", json={"image": png_b64()})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_rejections_total{reason="not_a_digit",version="2"} 2.0' in text


# ---------------------------------------------------------------- explain=true


def test_explain_adds_an_explanation_with_one_extra_call_to_the_answering_version(client_and_fake):
    client, fake = client_and_fake
    response = client.post("/v1/predict?explain=true", json={"image": png_b64()})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    explanation = body["explanation"]
    assert explanation["method"] == EXPLAIN_METHOD and explanation["baseline"] == EXPLAIN_BASELINE
    assert explanation["steps"] == EXPLAIN_STEPS and explanation["digit"] == 7
    assert "values" not in explanation
    assert len(fake.predict_calls) == 1 and len(fake.explain_calls) == 1
    explained, version = fake.explain_calls[0]
    assert version == NEW == body["model"]["version"]
    assert np.array_equal(explained, fake.predict_calls[0][0])  # the same model input
    assert body["timings_ms"]["explain"] >= 0 and body["timings_ms"]["total"] >= body["timings_ms"]["explain"]


def test_no_explain_call_unless_asked(client_and_fake):
    client, fake = client_and_fake
    body = client.post("/v1/predict", json={"image": png_b64()}).get_json()
    assert "explanation" not in body and "explain" not in body["timings_ms"] and fake.explain_calls == []


class LabelMovesAfterPredict(FakeServingClient):
    """Moves `stable` to version 1 right after a predict by label answered (a promotion in between)."""

    def predict(self, images, *, version=None, label=None, deadline=None):
        answer = super().predict(images, version=version, label=label, deadline=deadline)
        self.labels["stable"] = OLD
        return answer


@pytest.mark.parametrize("by_label", [True, False], ids=["grpc-like", "rest-like"])
def test_explain_is_pinned_to_the_version_number_even_when_the_label_moves(tmp_path, by_label):
    fake = LabelMovesAfterPredict(
        versions={OLD: "AVAILABLE", NEW: "AVAILABLE"},
        labels={"stable": NEW},
        judged={NEW},
        explainable={NEW},
        reply_names_version=by_label,
    )
    client = create_app(
        GatewayConfig(routing_file=str(tmp_path / "r.json")), serving_client=fake
    ).test_client()
    response = client.post("/v1/predict?explain=true", json={"image": png_b64()})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [version for _, version in fake.explain_calls] == [NEW]
    assert response.get_json()["model"]["version"] == NEW


def test_explain_heatmap_is_an_upscaled_colour_png_over_the_model_input(client_and_fake):
    client, _ = client_and_fake
    body = client.post("/v1/predict?explain=true&return_processed=true", json={"image": png_b64()}).get_json()
    heatmap = Image.open(io.BytesIO(base64.b64decode(body["explanation"]["heatmap_png"])))
    assert heatmap.format == "PNG" and heatmap.mode == "RGB" and heatmap.size == (28 * UPSCALE, 28 * UPSCALE)
    pixels = np.asarray(heatmap)
    blocks = pixels.reshape(28, UPSCALE, 28, UPSCALE, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()  # nearest-neighbour: every model pixel is one square
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["processed_image"])))) / 255.0
    cells = blocks[:, 0, :, 0]  # [28, 28, 3]
    # The fake's attribution is the input: background stays black, the strongest stroke pixel is hot.
    assert (cells[seen == 0] == 0).all()
    hottest = cells[np.unravel_index(np.argmax(seen), seen.shape)]
    assert hottest[0] > 200 and not (hottest[0] == hottest[1] == hottest[2])  # coloured, not grey


def test_explain_values_adds_the_raw_28x28_attribution(client_and_fake):
    client, fake = client_and_fake
    body = client.post("/v1/predict", json={"image": png_b64(), "explain": True, "explain_values": True})
    values = np.asarray(body.get_json()["explanation"]["values"])
    assert values.shape == (28, 28)
    assert np.allclose(values, fake.explain_calls[0][0][0, ..., 0])


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch"])
def test_explain_against_a_version_without_the_signature_is_409_naming_it(tmp_path, route):
    client, fake = make_client(tmp_path, stable=OLD)
    payload = {"image": png_b64()} if route == "/v1/predict" else {"images": [png_b64()]}
    error = error_of(client.post(f"{route}?explain=true", json=payload), 409, "explanation_unavailable")
    assert error["version"] == OLD and f"version {OLD}" in error["message"]
    assert [version for _, version in fake.explain_calls] == [OLD]


def test_predict_and_explain_share_one_deadline(client_and_fake):
    client, fake = client_and_fake
    client.post("/v1/predict?explain=true", json={"image": png_b64()})
    assert len(fake.deadlines) == 2 and fake.deadlines[0] is fake.deadlines[1]


def test_explain_timeout_is_504(client_and_fake):
    client, fake = client_and_fake
    fake.explain_failure = UpstreamTimeout("model server did not answer explain in time")
    error_of(client.post("/v1/predict?explain=true", json={"image": png_b64()}), 504, "upstream_timeout")


def test_version_unloaded_between_predict_and_explain_is_503_not_another_version(tmp_path):
    class UnloadsAfterPredict(FakeServingClient):
        def predict(self, images, **kwargs):
            answer = super().predict(images, **kwargs)
            self.versions[NEW] = "END"
            return answer

    fake = UnloadsAfterPredict(
        versions={OLD: "AVAILABLE", NEW: "AVAILABLE"}, labels={"stable": NEW}, judged={NEW}, explainable={NEW}
    )
    client = create_app(
        GatewayConfig(routing_file=str(tmp_path / "r.json")), serving_client=fake
    ).test_client()
    error = error_of(
        client.post("/v1/predict?explain=true", json={"image": png_b64()}), 503, "version_unloaded"
    )
    assert f"version {NEW}" in error["message"]


def test_batch_explain_is_one_call_for_the_answered_slots_only(client_and_fake):
    client, fake = client_and_fake
    fake.digit_scores = [0.9, 0.1, 0.8]
    images = [png_b64(7), png_b64(1), "not base64!", png_b64(4)]
    response = client.post("/v1/predict/batch?explain=true&reject=true", json={"images": images})
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert len(fake.explain_calls) == 1
    explained, version = fake.explain_calls[0]
    predicted = fake.predict_calls[0][0]
    assert version == NEW and np.array_equal(explained, predicted[[0, 2]])
    assert "explanation" in results[0] and "explanation" in results[3]
    assert results[1]["error"]["code"] == "not_a_digit" and "explanation" not in results[1]
    assert results[2]["status"] == 400
    assert "explain" in response.get_json()["timings_ms"]


def test_batch_explain_of_an_old_version_is_409(tmp_path):
    client, _ = make_client(tmp_path, stable=OLD)
    response = client.post("/v1/predict/batch", json={"images": [png_b64()], "explain": "on"})
    error_of(response, 409, "explanation_unavailable")


def test_explain_upstream_latency_is_its_own_metric(client_and_fake):
    client, _ = client_and_fake
    client.post("/v1/predict?explain=true", json={"image": png_b64()})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_upstream_duration_seconds_count{call="explain",transport="fake"} 1.0' in text


# ---------------------------------------------------------------- OpenAPI


def test_openapi_documents_the_judgement_reject_and_explain(client_and_fake):
    client, _ = client_and_fake
    spec = client.get("/openapi.json").get_json()
    for route in ("/v1/predict", "/v1/predict/batch"):
        operation = spec["paths"][route]["post"]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {"reject", "explain", "explain_values"} <= names
        assert {"409", "422"} <= set(operation["responses"])
    schemas = spec["components"]["schemas"]
    prediction = schemas["Prediction"]["properties"]
    assert prediction["is_digit"]["nullable"] and prediction["digit_score"]["nullable"]
    assert prediction["explanation"] == {"$ref": "#/components/schemas/Explanation"}
    assert {"method", "baseline", "steps", "digit", "heatmap_png", "values"} <= set(
        schemas["Explanation"]["properties"]
    )
    assert {"digit_score", "version"} <= set(schemas["Error"]["properties"]["error"]["properties"])
    page = client.get("/docs").get_data(as_text=True)
    assert "explain_values" in page and "judgement_unavailable" in page
