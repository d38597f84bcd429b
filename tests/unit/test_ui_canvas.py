"""The Sketchpad value becomes a gateway request with the strokes intact, and nothing else is changed."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ui.canvas import canvas_to_request, flatten_canvas, is_blank, model_choice_params, upload_to_request

SIZE = 448


def stroke_layer(colour=(0, 0, 0, 255)) -> np.ndarray:
    """A transparent RGBA layer with one thick vertical stroke, like a drawn '1'."""
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(224, 80), (224, 370)], fill=colour, width=36)
    return np.asarray(image)


def editor_value(layer: np.ndarray, composite: np.ndarray | None) -> dict:
    """The dict Gradio 6's ImageEditor passes with type='numpy' and image_mode='RGBA'."""
    return {"background": None, "layers": [layer], "composite": composite}


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_black_strokes_on_transparent_canvas_keep_their_alpha():
    layer = stroke_layer()
    request = canvas_to_request(editor_value(layer, layer), "enhanced", "default")
    image = decode(request.image)
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (SIZE, SIZE)
    alpha = np.asarray(image)[..., 3]
    # The stroke is opaque and the background transparent: RGB alone would be black on black.
    assert alpha[224, 224] == 255 and alpha[10, 10] == 0
    assert np.array_equal(np.asarray(image), layer)


def test_layers_are_used_when_the_composite_is_missing_or_empty():
    layer = stroke_layer()
    empty = np.zeros_like(layer)
    for composite in (None, empty):
        image = flatten_canvas(editor_value(layer, composite))
        assert np.array_equal(np.asarray(image), layer)


def test_layers_stack_over_the_background():
    background = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    background[..., :3] = 255
    background[..., 3] = 255  # an opaque white sheet
    value = {"background": background, "layers": [stroke_layer()], "composite": None}
    image = np.asarray(flatten_canvas(value))
    assert tuple(image[224, 224]) == (0, 0, 0, 255) and tuple(image[10, 10]) == (255, 255, 255, 255)


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"background": None, "layers": [], "composite": None},
        {
            "background": None,
            "layers": [np.zeros((SIZE, SIZE, 4), np.uint8)],
            "composite": np.zeros((SIZE, SIZE, 4), np.uint8),
        },
        {"background": None, "layers": [], "composite": np.full((SIZE, SIZE, 4), 255, np.uint8)},
    ],
)
def test_empty_canvas_gives_no_request(value):
    assert canvas_to_request(value) is None


def test_one_flat_colour_is_blank_but_a_single_dot_is_not():
    image = Image.new("RGBA", (28, 28), (255, 255, 255, 255))
    assert is_blank(image)
    image.putpixel((3, 3), (0, 0, 0, 255))
    assert not is_blank(image)


@pytest.mark.parametrize(
    ("choice", "params"),
    [
        ("default", {}),
        (None, {}),
        ("label:stable", {"label": "stable"}),
        ("version:2", {"version": "2"}),
    ],
)
def test_model_choice_becomes_query_options(choice, params):
    assert model_choice_params(choice) == params


def test_request_asks_for_the_processed_image_with_the_chosen_options():
    layer = stroke_layer()
    request = canvas_to_request(editor_value(layer, layer), "standard", "label:canary")
    assert request.params == {"preprocessing": "standard", "return_processed": "true", "label": "canary"}
    assert request.content_type == "image/png"


def test_explain_adds_the_gateway_option_only_when_on(tmp_path):
    layer = stroke_layer()
    assert "explain" not in canvas_to_request(editor_value(layer, layer), "enhanced", "default").params
    explained = canvas_to_request(editor_value(layer, layer), "enhanced", "default", explain=True)
    assert explained.params["explain"] == "true"
    path = tmp_path / "digit.png"
    Image.fromarray(layer).save(path)
    assert upload_to_request(str(path), "enhanced", "default", explain=True).params["explain"] == "true"


@pytest.mark.parametrize(("preprocessing", "choice"), [("fancy", "default"), ("standard", "latest")])
def test_unknown_options_are_rejected(preprocessing, choice):
    layer = stroke_layer()
    with pytest.raises(ValueError):
        canvas_to_request(editor_value(layer, layer), preprocessing, choice)


def test_upload_is_sent_byte_for_byte(tmp_path):
    path = tmp_path / "seven.JPG"
    Image.new("RGB", (60, 60), "white").save(path, format="JPEG")
    request = upload_to_request(str(path), "enhanced", "version:1")
    assert request.image == path.read_bytes()
    assert request.filename == "seven.JPG" and request.content_type == "image/jpeg"
    assert request.params["version"] == "1"
    assert upload_to_request(None) is None
