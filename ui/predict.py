"""One prediction from request to view: ask the gateway, and keep the answer when it cannot explain it."""

from dataclasses import replace

from ui.canvas import EXPLAIN_PARAM
from ui.client import GatewayClient, GatewayError, PredictRequest
from ui.correction import Correctable, correctable
from ui.present import PredictionView, view_from_error, view_from_result, without_explanation

# The gateway's 409 code for a version without the `explain` signature (gateway/errors.py).
EXPLANATION_UNAVAILABLE = "explanation_unavailable"


def predict_answer(
    client: GatewayClient, request: PredictRequest
) -> tuple[PredictionView, Correctable | None]:
    """The view for one request and the answer it shows (None: no answer to correct).

    A refused explanation costs one plain retry, so the answer still shows.
    """
    explain = EXPLAIN_PARAM in request.params
    try:
        result = client.predict(request)
        return view_from_result(result, explain=explain), correctable(request, result.reply)
    except GatewayError as error:
        if not (explain and error.code == EXPLANATION_UNAVAILABLE):
            return view_from_error(error), None
        refusal = error
    plain = replace(request, params={k: v for k, v in request.params.items() if k != EXPLAIN_PARAM})
    try:
        result = client.predict(plain)
        return without_explanation(view_from_result(result), refusal), correctable(plain, result.reply)
    except GatewayError as error:
        return view_from_error(error), None


def predict_view(client: GatewayClient, request: PredictRequest) -> PredictionView:
    """The view for one request (predict_answer without the answer)."""
    return predict_answer(client, request)[0]
