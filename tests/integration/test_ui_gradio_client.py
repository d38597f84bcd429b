"""gradio_client against the real UI, gateway and local model server: digits in, predictions out.

Two stacks: the committed baseline (version 1: no digit judgement, no `explain`), and the newest version
exported with both, which must call a star "not a digit" and explain a digit with a heat-map.
"""

import io
import socket
import sqlite3

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.e2e.digit_strokes import DIGIT_STROKES, STAR_STROKES, render_digit_png
from tests.support.processes import REPO_ROOT, free_port
from tests.support.stack import start_gateway, start_stack, start_ui
from tests.support.ui_client import (
    best_guess,
    canvas_value,
    drawn_digit,
    drawn_strokes,
    judging_model_dir,
    shown_digit,
)
from ui.config import UIConfig
from ui.correction import NOTHING_TO_CORRECT_MESSAGE
from ui.present import (
    EMPTY_CANVAS_MESSAGE,
    EMPTY_UPLOAD_MESSAGE,
    EXPLAIN_CAPTION,
    NOT_A_DIGIT_HEADLINE,
    NOT_A_DIGIT_HINT,
)

DIGITS = sorted(DIGIT_STROKES)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("ui_stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(stack):
    return Client(stack.ui_url, verbose=False)


@pytest.fixture(scope="module")
def judging_stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("ui_judging_stack"), version_dir=judging_model_dir())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def judging_client(judging_stack):
    return Client(judging_stack.ui_url, verbose=False)


@pytest.mark.parametrize("digit", DIGITS)
def test_drawn_digit_is_read_back(client, tmp_path, digit):
    digit_html, top3, processed, details, message, heatmap, caption = client.predict(
        canvas_value(drawn_digit(tmp_path, digit)), "enhanced", "default", api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == digit, (digit_html, top3, message)
    assert str(top3["label"]) == str(digit) and len(top3["confidences"]) == 3
    with Image.open(processed) as seen:
        assert seen.size == (28, 28)
    assert "version **1**" in details and "round trip" in details
    # Version 1 predates the digit judgement: the page claims none, and no heat-map was asked for.
    assert "no digit judgement" in details and "digit score" not in details
    assert message == "" and heatmap is None and caption == ""


@pytest.mark.parametrize("digit", [3, 7])
def test_uploaded_photo_style_digit_is_read_back(client, tmp_path, digit):
    ink = Image.open(io.BytesIO(render_digit_png(digit)))
    paper = Image.new("RGBA", ink.size, "white")
    path = tmp_path / f"upload_{digit}.jpg"
    Image.alpha_composite(paper, ink).convert("RGB").save(path, format="JPEG", quality=90)
    digit_html, *_ = client.predict(handle_file(str(path)), "enhanced", "default", api_name="/predict_upload")
    assert shown_digit(digit_html) == digit


def test_empty_canvas_gets_the_friendly_message(client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGBA", (448, 448), (0, 0, 0, 0)).save(blank)
    for value in (canvas_value(None), canvas_value(blank)):
        digit_html, top3, processed, details, message, *_ = client.predict(
            value, "enhanced", "default", api_name="/predict_drawing"
        )
        assert message == EMPTY_CANVAS_MESSAGE
        assert shown_digit(digit_html) is None and processed is None and details == ""


def test_missing_upload_gets_the_friendly_message(client):
    message = client.predict(None, "enhanced", "default", api_name="/predict_upload")[4]
    assert message == EMPTY_UPLOAD_MESSAGE


def test_compare_shows_both_preprocessing_modes(client, tmp_path):
    outputs = client.predict(canvas_value(drawn_digit(tmp_path, 7)), "default", api_name="/compare")
    standard, enhanced = outputs[:4], outputs[4:]
    for digit_html, top3, processed, _details in (standard, enhanced):
        assert shown_digit(digit_html) is not None and processed is not None
        assert len(top3["confidences"]) == 3
    assert "`standard`" in standard[3] and "`enhanced`" in enhanced[3]
    assert shown_digit(enhanced[0]) == 7


def test_status_line_and_model_choices_come_from_the_gateway(client):
    status, dropdown = client.predict("default", api_name="/status")
    assert "Gateway up" in status and "model ready" in status and "v1 AVAILABLE" in status


def test_explicit_version_and_unknown_label(client, tmp_path):
    png = drawn_digit(tmp_path, 1)
    digit_html, _, _, details, message, *_ = client.predict(
        canvas_value(png), "enhanced", "version:1", api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == 1 and "version **1**" in details and "`enhanced`" in details
    # The preprocessing choice reaches the gateway (standard is a plain resize: no claim on the digit).
    _, _, _, details, message, *_ = client.predict(
        canvas_value(png), "standard", "version:1", api_name="/predict_drawing"
    )
    assert "`standard`" in details and message == ""
    message = client.predict(canvas_value(png), "enhanced", "label:nope", api_name="/predict_drawing")[4]
    assert "refused" in message and "Traceback" not in message
    digit_html, *_ = client.predict(canvas_value(png), "enhanced", "default", api_name="/predict_drawing")
    assert shown_digit(digit_html) == 1  # the app is still serving


def test_explain_on_a_version_without_it_still_shows_the_answer_and_says_why(client, tmp_path):
    # The gateway refuses explain=true for version 1 (409 explanation_unavailable); the UI asks again
    # without it, so the reader still gets the answer and a plain note instead of the heat-map.
    digit_html, _, _, details, message, heatmap, caption = client.predict(
        canvas_value(drawn_digit(tmp_path, 7)), "enhanced", "default", True, api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == 7 and "version **1**" in details
    assert "No explanation" in message and "1" in message, message
    assert heatmap is None and "No explanation" in caption


def test_star_is_not_a_digit_and_the_best_guess_is_secondary(judging_client, tmp_path):
    digit_html, top3, processed, details, message, *_ = judging_client.predict(
        canvas_value(drawn_strokes(tmp_path, "star", STAR_STROKES)),
        "enhanced",
        "default",
        api_name="/predict_drawing",
    )
    assert NOT_A_DIGIT_HEADLINE in digit_html, (digit_html, details)
    assert best_guess(digit_html) is not None and shown_digit(digit_html) is None
    assert "sure" not in digit_html and not top3  # no top-3 headline either (an empty gr.Label)
    assert message == NOT_A_DIGIT_HINT and "not a digit" in details
    assert processed is not None


@pytest.mark.parametrize("digit", [1, 3, 7])
def test_drawn_digit_is_judged_a_digit_by_the_new_model(judging_client, tmp_path, digit):
    digit_html, _, _, details, message, *_ = judging_client.predict(
        canvas_value(drawn_digit(tmp_path, digit)), "enhanced", "default", api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == digit, (digit_html, details)
    assert "% sure" in digit_html and "a digit)" in details and message == ""


def test_explain_shows_the_heatmap_over_what_the_model_saw(judging_client, tmp_path):
    digit_html, _, processed, details, message, heatmap, caption = judging_client.predict(
        canvas_value(drawn_digit(tmp_path, 7)), "enhanced", "default", True, api_name="/predict_drawing"
    )
    assert shown_digit(digit_html) == 7 and message == "", (details, message)
    with Image.open(processed) as seen, Image.open(heatmap) as heat:
        # The heat-map is the 28x28 input upscaled by a whole factor, so each model pixel stays square.
        assert heat.width == heat.height and heat.width % seen.width == 0 and heat.width > seen.width
        assert len(set(heat.convert("RGB").getdata())) > 2  # coloured, not a blank square
    assert EXPLAIN_CAPTION in caption and "**7**" in caption


@pytest.fixture
def hung_gateway():
    """A port that accepts connections and never answers: a gateway stuck mid-request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(("gateway", "expected"), [("down", "is down"), ("hung", "is slow")])
def test_gateway_down_or_slow_gets_a_friendly_message_and_the_ui_stays_up(
    tmp_path, hung_gateway, gateway, expected
):
    url = hung_gateway if gateway == "hung" else f"http://127.0.0.1:{free_port()}"
    ui, ui_url = start_ui(tmp_path, url, name=f"ui_{gateway}_gateway", timeout_s=1.0)
    try:
        broken = Client(ui_url, verbose=False)
        png = drawn_digit(tmp_path, 7)
        message = broken.predict(canvas_value(png), "enhanced", "default", api_name="/predict_drawing")[4]
        assert expected in message and "Traceback" not in message, message
        status, _ = broken.predict("default", api_name="/status")
        assert ("Gateway down" in status) if gateway == "down" else ("Gateway" in status)
        assert ui.process.poll() is None, ui.log_tail()
        assert "Traceback" not in ui.log_tail()
    finally:
        ui.stop()


def test_upload_over_the_file_size_limit_is_refused_by_the_ui_server(stack):
    # Gradio's upload route checks max_file_size (ui/app.py launch) before the UI sees the file.
    limit = UIConfig().max_file_bytes
    small = httpx.post(
        f"{stack.ui_url}/gradio_api/upload", files={"files": ("a.png", b"x" * 1000)}, timeout=30
    )
    assert small.status_code == 200
    big = httpx.post(
        f"{stack.ui_url}/gradio_api/upload", files={"files": ("b.png", b"x" * (limit + 1))}, timeout=30
    )
    assert big.status_code == 413, big.text


def feedback_stats(stack) -> dict:
    """GET /v1/feedback/stats from the stack's gateway."""
    response = httpx.get(f"{stack.gateway_url}/v1/feedback/stats", timeout=10)
    response.raise_for_status()
    return response.json()


def newest_correction(stack) -> dict:
    """The newest record in the stack's own feedback database, image bytes included."""
    with sqlite3.connect(stack.feedback_database) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM feedback ORDER BY id DESC LIMIT 1").fetchone())


def pixels(png: bytes | str) -> list:
    """An image's RGBA pixels, to compare two encodings of one drawing."""
    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as image:
        return list(image.convert("RGBA").getdata())


def test_correction_stores_the_drawing_shown_with_the_clicked_digit(stack, tmp_path):
    session = Client(stack.ui_url, verbose=False)  # a fresh browser session: nothing shown yet
    before = feedback_stats(stack)
    assert session.predict("5", api_name="/correct") == NOTHING_TO_CORRECT_MESSAGE
    assert feedback_stats(stack)["total"] == before["total"]

    png = drawn_digit(tmp_path, 7)
    digit_html, *_ = session.predict(canvas_value(png), "standard", "default", api_name="/predict_drawing")
    shown = shown_digit(digit_html)
    assert shown is not None, digit_html
    wrong = next(digit for digit in range(10) if digit != shown)  # what a person would click: not the answer
    message = session.predict(str(wrong), api_name="/correct")
    assert message == f"Thanks — saved as a **{wrong}** (the model said {shown}).", message

    after = feedback_stats(stack)
    assert after["total"] == before["total"] + 1
    assert after["by_label"][str(wrong)] == before["by_label"][str(wrong)] + 1
    assert after["by_version"].get("1", 0) == before["by_version"].get("1", 0) + 1
    record = newest_correction(stack)
    assert (record["label"], record["predicted"], record["version"]) == (wrong, shown, 1)
    assert record["preprocessing"] == "standard"  # the mode of the answer shown, not the default
    assert pixels(record["upload"]) == pixels(str(png))  # the drawing the prediction was made from
    assert not (REPO_ROOT / "data" / "feedback.sqlite3").exists()

    # Used up: a second click cannot store a second, conflicting record for the same answer.
    assert session.predict(str(shown), api_name="/correct") == NOTHING_TO_CORRECT_MESSAGE
    # Another session never corrects this session's answer.
    assert Client(stack.ui_url, verbose=False).predict("3", api_name="/correct") == NOTHING_TO_CORRECT_MESSAGE
    assert feedback_stats(stack)["total"] == after["total"]


def test_correction_of_an_upload_keeps_its_bytes_and_type(stack, tmp_path):
    ink = Image.open(io.BytesIO(render_digit_png(3)))
    path = tmp_path / "upload_3.jpg"
    Image.alpha_composite(Image.new("RGBA", ink.size, "white"), ink).convert("RGB").save(path, format="JPEG")
    session = Client(stack.ui_url, verbose=False)
    digit_html, *_ = session.predict(
        handle_file(str(path)), "enhanced", "default", api_name="/predict_upload"
    )
    shown = shown_digit(digit_html)
    wrong = (shown + 1) % 10
    assert session.predict(str(wrong), api_name="/correct").startswith(f"Thanks — saved as a **{wrong}**")
    record = newest_correction(stack)
    assert record["upload"] == path.read_bytes()  # byte for byte, as the upload was sent
    assert (record["label"], record["predicted"], record["preprocessing"]) == (wrong, shown, "enhanced")


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("storage", "the feedback storage is unavailable right now. Please retry later."),
        ("gateway_down", "the gateway is not reachable"),
    ],
)
def test_correction_that_cannot_be_stored_says_why_and_thanks_no_one(stack, tmp_path, failure, said):
    # A gateway whose feedback database cannot be created (its directory is a file) answers 503
    # storage_unavailable; a gateway stopped between the answer and the click does not answer at all.
    not_a_dir = tmp_path / "not_a_directory"
    not_a_dir.write_text("")
    env = (
        {"FEEDBACK_DATABASE_URL": f"sqlite:///{not_a_dir / 'feedback.sqlite3'}"}
        if failure == "storage"
        else {}
    )
    gateway, gateway_url = start_gateway(tmp_path, stack.model_server, name=f"gateway_{failure}", env=env)
    ui = None
    try:
        ui, ui_url = start_ui(tmp_path, gateway_url, name=f"ui_{failure}", timeout_s=5.0)
        session = Client(ui_url, verbose=False)
        digit_html, *_ = session.predict(
            canvas_value(drawn_digit(tmp_path, 1)), "enhanced", "default", api_name="/predict_drawing"
        )
        assert shown_digit(digit_html) is not None, digit_html
        if failure == "gateway_down":
            gateway.stop()
        message = session.predict("4", api_name="/correct")
        assert message.startswith("Not saved") and said in message and "Thanks" not in message, message
        if failure == "storage":
            stats = httpx.get(f"{gateway_url}/v1/feedback/stats", timeout=10)
            assert stats.status_code == 503 and stats.json()["error"]["code"] == "storage_unavailable"
        assert "Traceback" not in ui.log_tail()
    finally:
        if ui is not None:
            ui.stop()
        gateway.stop()
