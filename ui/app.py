"""The Gradio Blocks app: a drawing canvas and an upload tab in front of the gateway."""

from collections.abc import Callable
from dataclasses import fields

import gradio as gr

from contract.mnist import DEFAULT_PREPROCESSING, NUM_CLASSES, PREPROCESSING_MODES
from ui.canvas import DEFAULT_MODEL_CHOICE, canvas_to_request, upload_to_request
from ui.client import GatewayClient, PredictRequest
from ui.config import UIConfig
from ui.correction import Correctable
from ui.correction_row import CorrectionRow
from ui.predict import predict_answer
from ui.present import (
    EMPTY_CANVAS_MESSAGE,
    EMPTY_UPLOAD_MESSAGE,
    EXPLAIN_CAPTION,
    PLACEHOLDER_DIGIT_HTML,
    PredictionView,
    model_choices,
    status_markdown,
    view_from_message,
)

CANVAS_ELEM_ID = "digit-canvas"
# A 448 px square canvas is 16x the 28 px model input. A digit drawn naturally is 250-400 px tall and
# the gateway scales it into a 20 px box, so a 36 px wide stroke (radius 18) becomes ~2-3 px, like
# MNIST's pen; much thinner strokes fade to grey specks in the reduction.
CANVAS_SIZE_PX = (448, 448)
CANVAS_HEIGHT_PX = 560
BRUSH_RADIUS_PX = 18
STATUS_REFRESH_S = 10.0
# One Gradio output per PredictionView field (PredictionView.as_outputs).
RESULT_OUTPUTS = len(fields(PredictionView))
# What a live prediction updates: the result, the answer kept for corrections, ten buttons and a message.
LIVE_OUTPUTS = RESULT_OUTPUTS + 1 + NUM_CLASSES + 1

# Finds the canvas's buttons by their English label ("Brush", "Clear canvas"); other locales translate
# the labels, so each lookup falls back to the button's place: the brush is the first button of the side
# toolbar whenever the brush is enabled, and the trash is the last button of the top panel.
_CANVAS_BUTTONS_JS = f"""
    const canvasRoot = () => document.getElementById("{CANVAS_ELEM_ID}");
    const canvasButton = (root, label, fallback) => Array.from(root.querySelectorAll("button")).find(
      (button) => (button.getAttribute("aria-label") || button.title || "").trim() === label
    ) || root.querySelector(fallback);
    const brushButton = (root) => canvasButton(root, "Brush", "button.quite-round");
    const trashButton = (root) => canvasButton(root, "Clear canvas", ".top-panel > button:last-of-type");
"""

# Gradio 6 opens the Sketchpad with its "image" tool selected, so a first stroke draws nothing and the
# canvas says "select the draw tool to start"; the editor's own "Clear canvas" button falls back to that
# tool too. This keeps the brush selected whenever no tool is: it never overrides a tool the person chose
# (eraser, pan), because a chosen tool's button is highlighted. One watcher per page; checking a few
# buttons five times a second costs nothing. A click on the trash re-selects the brush as soon as the
# editor has handled it, so a stroke started right after a clear is not lost to the 200 ms poll.
ACTIVATE_BRUSH_JS = f"""
(...args) => {{
  if (!window.__digitBrushWatcher) {{
{_CANVAS_BUTTONS_JS}
    const selectBrushIfNoTool = () => {{
      const root = canvasRoot();
      const brush = root && brushButton(root);
      if (brush && !root.querySelector("button.highlight")) brush.click();
    }};
    const selectBrushAfterTrash = (event) => {{
      const root = canvasRoot();
      const trash = root && trashButton(root);
      // Capture phase: this runs before the editor resets the tool, so wait for it to finish.
      if (trash && trash.contains(event.target)) setTimeout(() => brushButton(root)?.click(), 0);
    }};
    document.addEventListener("click", selectBrushAfterTrash, true);
    window.__digitBrushWatcher = setInterval(selectBrushIfNoTool, 200);
    selectBrushIfNoTool();
  }}
  return args;
}}
"""

# The app's Clear empties the canvas in the browser with the editor's own trash button, then selects the
# brush in the same tick. It must not send the Sketchpad a new value from the server: an event that
# outputs to the Sketchpad gives it a loading status, and Gradio 6 applies every later loading-status
# update to it only after re-uploading the drawing (ImageEditor get_data). Those updates finish out of
# order, so the Clear event's stale "pending" can land last and leave the full-size progress overlay over
# the canvas for seconds: the next stroke then lands on the overlay and selects page text instead.
CLEAR_CANVAS_JS = f"""
(...args) => {{
{_CANVAS_BUTTONS_JS}
  const root = canvasRoot();
  if (root) {{
    trashButton(root)?.click();
    brushButton(root)?.click();
  }}
  return args;
}}
"""

CSS = """
.digit-box { text-align: center; }
.digit-big { font-size: 7rem; font-weight: 800; line-height: 1.1; }
.digit-empty { opacity: 0.25; }
.digit-caption { font-size: 1rem; opacity: 0.75; }
.not-digit { font-size: 2rem; font-weight: 800; line-height: 1.2; padding: 1.5rem 0 0.5rem; }
/* The 28x28 model input, scaled up with hard pixel edges so each input pixel is visible. */
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
"""


def pixel_image(label: str, elem_id: str) -> gr.Image:
    """A read-only view of a small image, scaled up with crisp pixels (min_width 0: they share a row)."""
    return gr.Image(
        label=label,
        type="pil",
        interactive=False,
        height=168,
        elem_classes=["pixelated"],
        elem_id=elem_id,
        buttons=[],
        min_width=0,
    )


def create_demo(config: UIConfig | None = None, client: GatewayClient | None = None) -> gr.Blocks:
    """Build the Blocks app; nothing is launched and the gateway is not contacted here."""
    config = config or UIConfig.from_env()
    client = client or GatewayClient(config.gateway_url, config.gateway_timeout_s)

    def run(
        build: Callable[[], PredictRequest | None], empty_message: str
    ) -> tuple[PredictionView, Correctable | None]:
        """Build one request and send it to the gateway: the view, and the answer it shows (or None).

        Every failure becomes a friendly message, and no answer to correct.
        """
        try:
            request = build()
        except (ValueError, OSError) as error:  # an unknown option or an unreadable upload
            return view_from_message(f"Cannot send that: {error}"), None
        if request is None:
            return view_from_message(empty_message), None
        return predict_answer(client, request)

    def answered(view: PredictionView, answer: Correctable | None) -> tuple:
        """The result, the answer kept for corrections, and the correction row for it."""
        return (*view.as_outputs(), answer, *CorrectionRow.show(answer))

    def predict_drawing(canvas, preprocessing, model_choice, explain=False):
        """Predict the digit drawn on the canvas; `explain` adds the integrated-gradients heat-map."""
        view, answer = run(
            lambda: canvas_to_request(canvas, preprocessing, model_choice, explain), EMPTY_CANVAS_MESSAGE
        )
        return *view.as_outputs(), answer

    def predict_live(canvas, preprocessing, model_choice, explain, live):
        """Predict while drawing when live mode is on; an empty canvas just resets the result."""
        if not live:
            return tuple(gr.skip() for _ in range(LIVE_OUTPUTS))
        return answered(*run(lambda: canvas_to_request(canvas, preprocessing, model_choice, explain), ""))

    def predict_upload(path, preprocessing, model_choice, explain=False):
        """Predict the digit in an uploaded image file; `explain` adds the heat-map."""
        view, answer = run(
            lambda: upload_to_request(path, preprocessing, model_choice, explain), EMPTY_UPLOAD_MESSAGE
        )
        return *view.as_outputs(), answer

    def toggle_explain(canvas, preprocessing, model_choice, explain, live):
        """Show or hide the heat-map; switching it on re-reads a live drawing, switching off calls nobody."""
        outputs = (gr.skip(),) * LIVE_OUTPUTS
        if explain and live and canvas_to_request(canvas) is not None:
            outputs = predict_live(canvas, preprocessing, model_choice, explain, live)
        return gr.update(visible=explain), *outputs

    def compare(canvas, model_choice):
        """Predict the same drawing with each preprocessing mode, side by side."""
        outputs = []
        for mode in PREPROCESSING_MODES:
            view, _ = run(
                lambda mode=mode: canvas_to_request(canvas, mode, model_choice), EMPTY_CANVAS_MESSAGE
            )
            outputs += [
                view.digit_html,
                view.top_probabilities,
                view.processed_image,
                view.details or view.message,
            ]
        return tuple(outputs)

    def refresh_status(current_choice):
        """Status line and model dropdown from the gateway's health and model listing."""
        status = client.status()
        choices = model_choices(status.models)
        values = {value for _, value in choices}
        keep = current_choice if current_choice in values else DEFAULT_MODEL_CHOICE
        return status_markdown(status, config.gateway_url), gr.update(choices=choices, value=keep)

    def clear():
        """Empty the result, with nothing left to correct; CLEAR_CANVAS_JS has emptied the canvas."""
        return answered(view_from_message(""), None)

    with gr.Blocks(title="MNIST digit reader", analytics_enabled=False) as demo:
        gr.Markdown(
            "# MNIST digit reader\nDraw a digit with your mouse or finger; the model served "
            "behind the gateway reads it."
        )
        status = gr.Markdown("Checking the gateway…", elem_id="gateway-status")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Draw", id="draw"):
                        canvas = gr.Sketchpad(
                            label="Draw one digit (0-9)",
                            elem_id=CANVAS_ELEM_ID,
                            type="numpy",
                            image_mode="RGBA",
                            canvas_size=CANVAS_SIZE_PX,
                            fixed_canvas=True,
                            height=CANVAS_HEIGHT_PX,
                            brush=gr.Brush(
                                default_size=BRUSH_RADIUS_PX, colors=["#000000"], color_mode="fixed"
                            ),
                            eraser=gr.Eraser(default_size=BRUSH_RADIUS_PX * 2),
                            layers=False,
                            transforms=(),
                            buttons=["download"],
                        )
                        with gr.Row():
                            predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
                            clear_button = gr.Button("Clear", elem_id="clear")
                        live = gr.Checkbox(value=True, label="Predict while drawing", elem_id="live")
                    with gr.Tab("Upload", id="upload"):
                        upload = gr.Image(
                            label="Image of a digit (PNG, JPEG, ...)",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            elem_id="upload-image",
                        )
                        upload_button = gr.Button("Predict", variant="primary", elem_id="predict-upload")
                with gr.Accordion("Options", open=True):
                    explain = gr.Checkbox(
                        value=False,
                        label="Explain",
                        elem_id="explain",
                        info="show which pixels pushed the model towards its answer (one more model call)",
                    )
                    preprocessing = gr.Radio(
                        list(PREPROCESSING_MODES),
                        value=DEFAULT_PREPROCESSING,
                        label="Preprocessing",
                        elem_id="preprocessing",
                        info="standard: plain resize to 28x28; enhanced: crops the digit, fits it "
                        "in a 20 px box and centres it by mass, like MNIST",
                    )
                    # Custom values are allowed because the choices come from the gateway per page load;
                    # API clients may name any version or label, and the gateway judges it.
                    model_choice = gr.Dropdown(
                        model_choices(None),
                        value=DEFAULT_MODEL_CHOICE,
                        allow_custom_value=True,
                        label="Model version or label",
                        elem_id="model-choice",
                    )
                    refresh_button = gr.Button("Refresh models", size="sm")
            with gr.Column(scale=2):
                message = gr.Markdown("", label="Message", elem_id="message")
                digit = gr.HTML(PLACEHOLDER_DIGIT_HTML, label="Predicted digit", elem_id="predicted-digit")
                correction = CorrectionRow.build()
                probabilities = gr.Label(
                    num_top_classes=3, label="Top 3 probabilities", elem_id="probabilities"
                )
                # min_width 0: the two 28x28 views share the column instead of wrapping onto two rows.
                with gr.Row():
                    processed = pixel_image("What the model saw (28x28)", "processed-image")
                    with gr.Column(visible=False, elem_id="explanation", min_width=0) as explanation_box:
                        explanation = pixel_image("Why: heat-map over it", "explanation-image")
                        explanation_caption = gr.Markdown(EXPLAIN_CAPTION, elem_id="explanation-caption")
                details = gr.Markdown("", label="Details", elem_id="prediction-details")
        with gr.Accordion("Compare preprocessing modes on the same drawing", open=False):
            compare_button = gr.Button("Compare standard vs enhanced", elem_id="compare")
            compare_outputs = []
            with gr.Row():
                for mode in PREPROCESSING_MODES:
                    with gr.Column():
                        gr.Markdown(f"### {mode}")
                        compare_outputs += [
                            gr.HTML(PLACEHOLDER_DIGIT_HTML, elem_id=f"compare-digit-{mode}"),
                            gr.Label(num_top_classes=3, label="Top 3"),
                            gr.Image(
                                label="28x28 input",
                                type="pil",
                                interactive=False,
                                height=140,
                                elem_classes=["pixelated"],
                                buttons=[],
                            ),
                            gr.Markdown(""),
                        ]

        # The answer on the page that the correction buttons correct: per browser session, never global.
        answer = gr.State(None)
        result = [digit, probabilities, processed, details, message, explanation, explanation_caption]
        # Private events update the correction row themselves; the public predict endpoints keep their
        # documented outputs (gradio_client skips the State) and update the row in a private step after.
        live_result = [*result, answer, *correction.outputs]
        # `explain` comes last, so API clients that send only the first three inputs keep working.
        options = [preprocessing, model_choice, explain]
        predict_button.click(
            predict_drawing,
            [canvas, *options],
            [*result, answer],
            api_name="predict_drawing",
            concurrency_id="predict",
        ).then(correction.show, answer, correction.outputs, api_visibility="private", show_progress="hidden")
        explain.change(
            toggle_explain,
            [canvas, *options, live],
            [explanation_box, *live_result],
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_id="predict",
        )
        canvas.change(
            predict_live,
            [canvas, *options, live],
            live_result,
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_id="predict",
        )
        upload_button.click(
            predict_upload,
            [upload, *options],
            [*result, answer],
            api_name="predict_upload",
            concurrency_id="predict",
        ).then(correction.show, answer, correction.outputs, api_visibility="private", show_progress="hidden")
        correction.wire(client, answer)
        # The canvas is not an output here on purpose: see CLEAR_CANVAS_JS.
        clear_button.click(clear, None, live_result, js=CLEAR_CANVAS_JS, api_visibility="private")
        compare_button.click(
            compare, [canvas, model_choice], compare_outputs, api_name="compare", concurrency_id="predict"
        )
        refresh_button.click(refresh_status, model_choice, [status, model_choice], api_name="status")
        gr.Timer(STATUS_REFRESH_S).tick(
            refresh_status,
            model_choice,
            [status, model_choice],
            api_visibility="private",
            show_progress="hidden",
        )
        demo.load(
            refresh_status,
            model_choice,
            [status, model_choice],
            api_visibility="private",
            js=ACTIVATE_BRUSH_JS,
        )
    return demo


def launch_options(config: UIConfig) -> dict:
    """Keyword arguments for Blocks.launch(): where to listen, and the upload size limit."""
    return {
        "server_name": config.host,
        "server_port": config.port,
        "max_file_size": config.max_file_bytes,
        "css": CSS,
        "ssr_mode": False,
        "show_error": False,
        "footer_links": ["api"],
    }


def main() -> None:
    """Run the UI server on UI_HOST:UI_PORT."""
    config = UIConfig.from_env()
    demo = create_demo(config)
    demo.queue(default_concurrency_limit=4).launch(**launch_options(config))
