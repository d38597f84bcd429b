"""The Blocks app builds without touching the gateway and exposes the endpoints and brush fix it promises."""

import gradio as gr
import httpx
import numpy as np

from ui.app import ACTIVATE_BRUSH_JS, CANVAS_ELEM_ID, CLEAR_CANVAS_JS, create_demo, launch_options
from ui.client import GatewayClient
from ui.config import UIConfig
from ui.correction_row import CORRECTION_MESSAGE_ELEM_ID


class RecordingTransport(httpx.BaseTransport):
    """Counts requests; the app must not call the gateway while it is being built."""

    def __init__(self):
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(503)


def build():
    transport = RecordingTransport()
    config = UIConfig(gateway_url="http://gateway.test")
    demo = create_demo(config, GatewayClient(config.gateway_url, 1.0, transport=transport))
    return demo, transport


def test_building_the_app_does_not_contact_the_gateway():
    _, transport = build()
    assert transport.seen == []


def test_public_endpoints_for_api_clients():
    demo, _ = build()
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public == {"predict_drawing", "predict_upload", "compare", "status", "correct"}


def test_page_load_activates_the_brush_on_the_canvas():
    demo, _ = build()
    load_js = [fn.js for fn in demo.fns.values() if fn.js and any(t[1] == "load" for t in fn.targets)]
    assert load_js == [ACTIVATE_BRUSH_JS]
    assert f'getElementById("{CANVAS_ELEM_ID}")' in ACTIVATE_BRUSH_JS


def block_with_elem_id(demo, elem_id: str):
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_clear_empties_the_canvas_in_the_browser_and_no_event_writes_to_it():
    # A server value for the Sketchpad gives it a loading overlay that can outlive the event and swallow
    # the next stroke (README, UI section); Clear must go through the editor's own trash button.
    demo, _ = build()
    canvas = block_with_elem_id(demo, CANVAS_ELEM_ID)
    assert [fn.name for fn in demo.fns.values() if canvas in fn.outputs] == []
    clear = block_with_elem_id(demo, "clear")
    clear_js = [fn.js for fn in demo.fns.values() if (clear._id, "click") in fn.targets]
    assert clear_js == [CLEAR_CANVAS_JS]
    assert '"Clear canvas"' in CLEAR_CANVAS_JS and '"Brush"' in CLEAR_CANVAS_JS


def test_config_reads_the_documented_environment_variables():
    config = UIConfig.from_env(
        {
            "GATEWAY_URL": "http://gw:8000/",
            "GATEWAY_TIMEOUT_S": "2.5",
            "UI_PORT": "9000",
            "UI_HOST": "0.0.0.0",
        }
    )
    assert config == UIConfig(gateway_url="http://gw:8000", gateway_timeout_s=2.5, host="0.0.0.0", port=9000)
    assert UIConfig.from_env({}) == UIConfig()


def test_launch_caps_upload_size():
    assert launch_options(UIConfig())["max_file_size"] == 5 * 1024 * 1024
    assert launch_options(UIConfig.from_env({"UI_MAX_FILE_BYTES": "1000"}))["max_file_size"] == 1000


def one_stroke_canvas() -> dict:
    """A Sketchpad value with one black stroke on a transparent canvas."""
    layer = np.zeros((448, 448, 4), dtype=np.uint8)
    layer[100:350, 210:240] = (0, 0, 0, 255)
    return {"background": None, "layers": [layer], "composite": layer}


def event_function(demo, name: str):
    return next(fn.fn for fn in demo.fns.values() if fn.name == name)


def test_explain_toggle_off_calls_no_one_and_on_rereads_the_live_drawing_with_explain():
    demo, transport = build()
    toggle = event_function(demo, "toggle_explain")
    visibility, *_ = toggle(one_stroke_canvas(), "enhanced", "default", False, True)
    assert visibility["visible"] is False and transport.seen == []
    visibility, *_ = toggle(one_stroke_canvas(), "enhanced", "default", True, False)  # live mode off
    assert visibility["visible"] is True and transport.seen == []
    toggle(one_stroke_canvas(), "enhanced", "default", True, True)
    assert [request.url.params.get("explain") for request in transport.seen] == ["true"]


def test_predict_drawing_takes_explain_last_with_a_default_for_older_clients():
    demo, transport = build()
    predict = event_function(demo, "predict_drawing")
    predict(one_stroke_canvas(), "enhanced", "default")
    predict(one_stroke_canvas(), "enhanced", "default", True)
    assert [request.url.params.get("explain") for request in transport.seen] == [None, "true"]
    explain = block_with_elem_id(demo, "explain")
    assert explain.label == "Explain" and explain.value is False


class ScriptedGateway(httpx.BaseTransport):
    """Reads a 7 drawn as a 1 (version 2), stores corrections with the label sent; records every request."""

    def __init__(self):
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        request.read()
        if request.url.path == "/v1/predict":
            reply = {
                "digit": 1,
                "confidence": 0.6,
                "probabilities": [0.01, 0.6] + [0.05] * 8,
                "model": {"name": "mnist", "version": 2, "label": "stable"},
                "preprocessing": request.url.params["preprocessing"],
            }
            return httpx.Response(200, json=reply)
        if request.url.path == "/v1/feedback":
            label = int(request.content.split(b'name="label"\r\n\r\n')[1][:1])
            return httpx.Response(201, json={"id": 1, "label": label, "predicted": 1, "version": 2})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})


def build_with(transport: httpx.BaseTransport):
    config = UIConfig(gateway_url="http://gateway.test")
    return create_demo(config, GatewayClient(config.gateway_url, 1.0, transport=transport))


def event(demo, name: str):
    return next(fn for fn in demo.fns.values() if fn.name == name)


def image_part(request: httpx.Request) -> bytes:
    """The bytes of the multipart `image` part."""
    part = request.content.split(b'name="image"; filename=')[1]
    return part.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]


def interactive(update) -> bool:
    return update["interactive"]


def test_correction_buttons_have_stable_ids_and_start_disabled():
    demo, _ = build()
    for digit in range(10):
        button = block_with_elem_id(demo, f"correct-{digit}")
        assert button.value == str(digit) and button.interactive is False
    assert block_with_elem_id(demo, CORRECTION_MESSAGE_ELEM_ID).value == ""


def test_the_answer_is_kept_per_session_and_corrected_through_the_public_endpoint():
    demo, _ = build()
    state = event(demo, "predict_drawing").outputs[-1]
    assert isinstance(state, gr.State)  # per browser session, not a module global
    correct = next(fn for fn in demo.fns.values() if fn.api_name == "correct")
    assert correct.api_visibility == "public" and correct.inputs[1] is state
    assert correct.inputs[0] is block_with_elem_id(demo, "correct-0")
    corrections = [fn for fn in demo.fns.values() if fn.name == "correct"]
    assert sorted(fn.inputs[0].elem_id for fn in corrections) == [f"correct-{d}" for d in range(10)]
    assert all(fn.inputs[1] is state and fn.outputs[0] is state for fn in corrections)


def test_clicked_digit_is_sent_with_the_image_and_the_reply_of_the_answer_shown():
    gateway = ScriptedGateway()
    demo = build_with(gateway)
    *shown, answer = event(demo, "predict_drawing").fn(one_stroke_canvas(), "standard", "default")
    assert 'data-digit="1"' in shown[0] and answer is not None
    left, message = event(demo, "correct").fn("7", answer)
    predict, feedback = gateway.seen
    assert feedback.method == "POST" and feedback.url.path == "/v1/feedback"
    assert image_part(feedback) == image_part(predict)  # the very bytes the prediction was made from
    for name, value in (
        ("label", b"7"),
        ("predicted", b"1"),
        ("version", b"2"),
        ("preprocessing", b"standard"),
    ):
        assert f'name="{name}"\r\n\r\n'.encode() + value + b"\r\n" in feedback.content, name
    assert message == "Thanks — saved as a **7** (the model said 1)."
    assert left is None  # the stored answer is used up
    assert not any(map(interactive, event(demo, "button_states").fn(left)))


def test_buttons_are_active_only_while_an_answer_is_shown():
    gateway = ScriptedGateway()
    demo = build_with(gateway)
    *_, answer = event(demo, "predict_drawing").fn(one_stroke_canvas(), "enhanced", "default")
    *buttons, message = event(demo, "show").fn(answer)
    assert len(buttons) == 10 and all(map(interactive, buttons)) and message == ""
    *buttons, message = event(demo, "show").fn(None)
    assert not any(map(interactive, buttons)) and message == ""


def test_clear_leaves_nothing_to_correct():
    demo, _ = build()
    clear = event(demo, "clear")
    values = clear.fn()
    outputs = dict(zip(clear.outputs, values, strict=True))
    state = event(demo, "predict_drawing").outputs[-1]
    assert outputs[state] is None
    for digit in range(10):
        assert outputs[block_with_elem_id(demo, f"correct-{digit}")]["interactive"] is False
    assert outputs[block_with_elem_id(demo, CORRECTION_MESSAGE_ELEM_ID)] == ""


def test_live_prediction_offers_its_answer_for_correction_and_an_empty_canvas_withdraws_it():
    gateway = ScriptedGateway()
    demo = build_with(gateway)
    live = event(demo, "predict_live")
    drawn = dict(
        zip(live.outputs, live.fn(one_stroke_canvas(), "enhanced", "default", False, True), strict=True)
    )
    state = event(demo, "predict_drawing").outputs[-1]
    assert drawn[state].predicted == 1 and drawn[block_with_elem_id(demo, "correct-7")]["interactive"]
    empty = dict(zip(live.outputs, live.fn(None, "enhanced", "default", False, True), strict=True))
    assert empty[state] is None and not empty[block_with_elem_id(demo, "correct-7")]["interactive"]
