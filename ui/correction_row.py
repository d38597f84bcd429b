"""The "Wrong? It is a …" row: ten digit buttons that send a correction, and the message that answers."""

from dataclasses import dataclass

import gradio as gr

from contract.mnist import NUM_CLASSES
from ui.client import GatewayClient
from ui.correction import CORRECTION_PROMPT, Correctable, send_correction

CORRECTION_MESSAGE_ELEM_ID = "correction-message"


def button_elem_id(digit: int) -> str:
    """The elem_id of the button that says the answer is `digit`."""
    return f"correct-{digit}"


@dataclass
class CorrectionRow:
    """The digit buttons and the message under them; the corrected answer itself lives in a gr.State."""

    buttons: list[gr.Button]
    message: gr.Markdown

    @classmethod
    def build(cls) -> "CorrectionRow":
        """Lay the row out in the current Blocks context; the buttons start disabled (nothing to correct)."""
        gr.Markdown(f"**{CORRECTION_PROMPT}**", elem_id="correction-prompt")
        with gr.Row(elem_id="correction-buttons"):
            buttons = [
                gr.Button(
                    str(digit),
                    size="sm",
                    min_width=0,
                    interactive=False,
                    elem_id=button_elem_id(digit),
                )
                for digit in range(NUM_CLASSES)
            ]
        message = gr.Markdown("", elem_id=CORRECTION_MESSAGE_ELEM_ID)
        return cls(buttons, message)

    @property
    def outputs(self) -> list:
        """The components `show` updates: the ten buttons, then the message."""
        return [*self.buttons, self.message]

    @staticmethod
    def button_states(answer: Correctable | None) -> tuple:
        """The buttons are active only while there is an answer to correct."""
        return tuple(gr.update(interactive=answer is not None) for _ in range(NUM_CLASSES))

    @classmethod
    def show(cls, answer: Correctable | None) -> tuple:
        """Values for `outputs` when a new answer (or none) is shown: buttons for it, no old message."""
        return (*cls.button_states(answer), "")

    def wire(self, client: GatewayClient, answer_state: gr.State) -> None:
        """Each button sends its own digit as the correction of the answer in `answer_state`.

        The button's text is the digit sent. Button 0's event is also the public `/correct` endpoint, so an
        API client in the same session sends any digit: `client.predict("7", api_name="/correct")`.
        """

        def correct(digit, answer: Correctable | None):
            """Send the correction; the answer is used up once it is stored."""
            message, still_correctable = send_correction(client, answer, digit)
            return still_correctable, message

        for digit, button in enumerate(self.buttons):
            public = digit == 0
            button.click(
                correct,
                [button, answer_state],
                [answer_state, self.message],
                api_name="correct" if public else f"correct_{digit}",
                api_visibility="public" if public else "private",
                concurrency_id="feedback",
            ).then(
                self.button_states,
                answer_state,
                self.buttons,
                api_visibility="private",
                show_progress="hidden",
            )
