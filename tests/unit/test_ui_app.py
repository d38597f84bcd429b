"""The Blocks app builds without touching the gateway and exposes the endpoints and brush fix it promises."""

import httpx
import numpy as np

from ui.app import ACTIVATE_BRUSH_JS, CANVAS_ELEM_ID, CLEAR_CANVAS_JS, create_demo, launch_options
from ui.client import GatewayClient
from ui.config import UIConfig


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
    assert public == {"predict_drawing", "predict_upload", "compare", "status"}


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
