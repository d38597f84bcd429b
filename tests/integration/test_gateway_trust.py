"""The digit judgement, reject=true and explain=true through the real gateway and local model server.

The model server serves three versions: 1, the committed baseline (no judgement, no explain signature);
2, a small linear model with both signatures whose every answer numpy computes here
(tests/support/signature_models.py), so the gateway's numbers are checked exactly; and 3, the newest
version under models/mnist that has the explain signature (tests needing it skip while there is none).
"""

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image

from contract.mnist import EXPLAIN_SIGNATURE_NAME, SIGNATURE_NAME
from gateway.client.grpc_client import GrpcServingClient
from gateway.client.rest_client import RestServingClient
from gateway.config import GatewayConfig
from gateway.errors import MissingSignature
from gateway.heatmap import UPSCALE
from tests.fixtures.digit_images import draw_digit, encode
from tests.fixtures.gateway_process import gateway_env, start_gateway
from tests.support.model_server import (
    COMMITTED_MODEL_DIR,
    copy_model,
    default_model_version_dir,
    start_model_server,
    write_model_config,
)
from tests.support.signature_models import expected_outputs, linear_weights, newest_version_with

TRANSPORTS = ("grpc", "rest")
TIMEOUT_S = 30
OLD, LINEAR, REAL = 1, 2, 3
# Where the real model with both signatures is looked for (the newest such version there).
REAL_MODELS = COMMITTED_MODEL_DIR


def bright_block() -> np.ndarray:
    """A 28x28 image the linear model judges a digit (its digit_score grows with mean brightness)."""
    image = np.zeros((28, 28), np.float32)
    image[4:24, 10:18] = 1.0
    return image


def faint_stroke() -> np.ndarray:
    """A 28x28 image the linear model judges not a digit (little ink)."""
    image = np.zeros((28, 28), np.float32)
    image[10:14, 12:14] = 0.8
    return image


def expected(image: np.ndarray) -> dict:
    """The linear model's answers for one image, per signature."""
    return expected_outputs(image[np.newaxis, ..., np.newaxis], linear_weights())


def pixels_body(image: np.ndarray, **options) -> dict:
    return {"pixels": image.tolist(), "preprocessing": "standard", **options}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Model server (versions 1, 2 and, when there is one, 3) + one gunicorn gateway per transport."""
    from tests.support.signature_models import write_two_signature_model

    root = tmp_path_factory.mktemp("gateway_trust")
    base = root / "models" / "mnist"
    copy_model(default_model_version_dir(), base, OLD)
    write_two_signature_model(base / str(LINEAR))
    real = newest_version_with(EXPLAIN_SIGNATURE_NAME, REAL_MODELS)
    if real is not None:
        copy_model(real, base, REAL)
    config = write_model_config(root / "models.config", base, policy="all {}", labels={"stable": LINEAR})
    server = start_model_server(root, model_config_file=config)
    gateways = {}
    try:
        for transport in TRANSPORTS:
            env = gateway_env(server.grpc_port, server.rest_port, transport, UPSTREAM_TIMEOUT_S="10")
            gateways[transport] = start_gateway(root, env, name=f"gateway_{transport}", workers=1, threads=2)
        yield {"server": server, "gateways": gateways, "real": real}
    finally:
        for gateway in gateways.values():
            gateway.stop()
        server.stop()


@pytest.fixture(params=TRANSPORTS)
def url(stack, request) -> str:
    return stack["gateways"][request.param].url


def post(url: str, route: str = "/v1/predict", **kwargs) -> requests.Response:
    return requests.post(f"{url}{route}", timeout=TIMEOUT_S, **kwargs)


def error_of(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def png_of(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


# ---------------------------------------------------------------- is_digit / digit_score


@pytest.mark.parametrize("image", [bright_block(), faint_stroke()], ids=["digit", "not-a-digit"])
def test_judged_version_answers_the_models_own_judgement(url, image):
    body = post(url, json=pixels_body(image)).json()
    want = expected(image)[SIGNATURE_NAME]
    assert body["model"]["version"] == LINEAR
    assert body["digit"] == int(want["digit"][0])
    assert body["digit_score"] == pytest.approx(float(want["digit_score"][0]), abs=1e-5)
    assert body["is_digit"] is bool(want["is_digit"][0])
    assert body["confidence"] == pytest.approx(body["probabilities"][body["digit"]])


def test_version_without_judgement_answers_null(url):
    body = post(url, json=pixels_body(bright_block(), version=OLD)).json()
    assert body["model"]["version"] == OLD
    assert body["is_digit"] is None and body["digit_score"] is None
    assert 0 <= body["digit"] <= 9 and body["confidence"] == max(body["probabilities"])


# ---------------------------------------------------------------- reject=true


def test_reject_true_turns_a_non_digit_into_422_with_the_score_and_best_guess(url):
    image = faint_stroke()
    error = error_of(post(url, params={"reject": "true"}, json=pixels_body(image)), 422, "not_a_digit")
    want = expected(image)[SIGNATURE_NAME]
    assert error["digit_score"] == pytest.approx(float(want["digit_score"][0]), abs=1e-5)
    assert error["digit"] == int(want["digit"][0]) and error["version"] == LINEAR


def test_reject_true_answers_a_digit(url):
    response = post(url, json=pixels_body(bright_block(), reject=True))
    assert response.status_code == 200 and response.json()["is_digit"] is True


def test_reject_true_against_version_1_is_409_judgement_unavailable(url):
    response = post(url, json=pixels_body(bright_block(), reject="true", version=OLD))
    assert error_of(response, 409, "judgement_unavailable")["version"] == OLD


def test_bad_reject_value_is_400(url):
    error_of(post(url, params={"reject": "perhaps"}, json=pixels_body(bright_block())), 400, "bad_option")


def test_batch_reject_gives_the_non_digit_slot_its_error_and_answers_the_rest(url):
    images = [bright_block(), faint_stroke(), bright_block()[::-1]]
    body = {"pixels": [image.tolist() for image in images], "preprocessing": "standard", "reject": "true"}
    response = post(url, "/v1/predict/batch", json=body)
    assert response.status_code == 200, response.text
    first, rejected, third = response.json()["results"]
    assert first["is_digit"] is True and third["is_digit"] is True
    assert rejected["status"] == 422 and rejected["error"]["code"] == "not_a_digit"


# ---------------------------------------------------------------- explain=true


def test_explain_returns_the_models_attribution_and_a_heatmap(url):
    image = bright_block()
    response = post(url, json=pixels_body(image, explain=True, explain_values=True))
    assert response.status_code == 200, response.text
    body = response.json()
    want = expected(image)[EXPLAIN_SIGNATURE_NAME]
    explanation = body["explanation"]
    assert explanation["digit"] == int(want["digit"][0]) == body["digit"]
    assert np.allclose(explanation["values"], want["attribution"][0], atol=1e-5)
    heatmap = png_of(explanation["heatmap_png"])
    assert heatmap.size == (28 * UPSCALE, 28 * UPSCALE) and heatmap.mode == "RGB"
    assert body["timings_ms"]["explain"] > 0


def test_explain_against_version_1_is_409_explanation_unavailable(url):
    response = post(url, json=pixels_body(bright_block(), explain="true", version=OLD))
    error = error_of(response, 409, "explanation_unavailable")
    assert error["version"] == OLD and "version 1" in error["message"]


def test_batch_explain_explains_each_answered_slot(url):
    images = [bright_block(), faint_stroke(), bright_block()[:, ::-1]]
    body = {
        "pixels": [image.tolist() for image in images],
        "preprocessing": "standard",
        "reject": True,
        "explain": True,
        "explain_values": True,
    }
    response = post(url, "/v1/predict/batch", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    for index in (0, 2):
        want = expected(images[index])[EXPLAIN_SIGNATURE_NAME]
        assert np.allclose(results[index]["explanation"]["values"], want["attribution"][0], atol=1e-5)
    assert "explanation" not in results[1] and results[1]["error"]["code"] == "not_a_digit"


def test_real_model_judges_and_explains_a_drawn_digit(stack, url):
    if stack["real"] is None:
        pytest.skip(f"no version under {REAL_MODELS} has the {EXPLAIN_SIGNATURE_NAME!r} signature yet")
    files = {"image": ("7.png", encode(draw_digit(7)), "image/png")}
    response = post(url, params={"version": REAL, "explain": "true"}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    # A clean drawn 7 is the easy case every version with a judgement must get right.
    assert body["digit"] == 7 and body["is_digit"] is True and 0.5 <= body["digit_score"] <= 1.0
    assert body["explanation"]["digit"] == body["digit"]
    assert png_of(body["explanation"]["heatmap_png"]).size == (28 * UPSCALE, 28 * UPSCALE)


# ---------------------------------------------------------------- the two clients agree


@pytest.fixture(scope="module")
def clients(stack):
    server = stack["server"]
    config = GatewayConfig(grpc_port=server.grpc_port, rest_port=server.rest_port, upstream_timeout_s=10.0)
    made = {"grpc": GrpcServingClient(config), "rest": RestServingClient(config)}
    yield made
    for client in made.values():
        client.close()


def test_both_clients_read_the_same_judgement_and_attribution(clients):
    batch = np.stack([bright_block(), faint_stroke()])[..., np.newaxis]
    predictions = {name: client.predict(batch, version=LINEAR) for name, client in clients.items()}
    explanations = {name: client.explain(batch, version=LINEAR) for name, client in clients.items()}
    want = expected_outputs(batch, linear_weights())
    for name in TRANSPORTS:
        assert (
            predictions[name].is_digit.tolist() == want[SIGNATURE_NAME]["is_digit"].tolist() == [True, False]
        )
        assert np.allclose(predictions[name].digit_score, want[SIGNATURE_NAME]["digit_score"], atol=1e-6)
        assert explanations[name].version == LINEAR
        assert explanations[name].digits.tolist() == want[EXPLAIN_SIGNATURE_NAME]["digit"].tolist()
        assert np.allclose(
            explanations[name].attribution, want[EXPLAIN_SIGNATURE_NAME]["attribution"], atol=1e-5
        )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_version_1_has_no_judgement_and_no_explain_signature_in_either_client(clients, transport):
    batch = bright_block()[np.newaxis, ..., np.newaxis]
    prediction = clients[transport].predict(batch, version=OLD)
    assert prediction.digit_score is None and prediction.is_digit is None
    with pytest.raises(MissingSignature) as info:
        clients[transport].explain(batch, version=OLD)
    assert info.value.signature == EXPLAIN_SIGNATURE_NAME
