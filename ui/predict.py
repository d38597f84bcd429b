"""One prediction from request to view: ask the gateway, and keep the answer when it cannot explain it."""

from dataclasses import replace

from ui.canvas import EXPLAIN_PARAM
from ui.client import GatewayClient, GatewayError, PredictRequest
from ui.present import PredictionView, view_from_error, view_from_result, without_explanation

# The gateway's 409 code for a version without the `explain` signature (gateway/errors.py).
EXPLANATION_UNAVAILABLE = "explanation_unavailable"


def predict_view(client: GatewayClient, request: PredictRequest) -> PredictionView:
    """The view for one request; a refused explanation costs one plain retry, so the answer still shows."""
    explain = EXPLAIN_PARAM in request.params
    try:
        return view_from_result(client.predict(request), explain=explain)
    except GatewayError as error:
        if not (explain and error.code == EXPLANATION_UNAVAILABLE):
            return view_from_error(error)
        refusal = error
    plain = replace(request, params={k: v for k, v in request.params.items() if k != EXPLAIN_PARAM})
    try:
        return without_explanation(view_from_result(client.predict(plain)), refusal)
    except GatewayError as error:
        return view_from_error(error)
