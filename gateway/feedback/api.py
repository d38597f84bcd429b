"""The /v1/feedback blueprint: store a user's correction, count the corrections stored."""

from flask import Blueprint, current_app, jsonify, request

from gateway.errors import BadRequest, GatewayError
from gateway.feedback.fields import correction_fields
from gateway.feedback.store import Correction, FeedbackStore
from gateway.inputs import limit_body, single_body, single_body_limit, single_image
from gateway.metrics import GatewayMetrics
from gateway.service import PredictionService

feedback_api = Blueprint("feedback", __name__, url_prefix="/v1")


@feedback_api.post("/feedback")
def submit():
    """One image and its right digit in (as for /v1/predict, plus `label`); 201 with the stored record."""
    service: PredictionService = current_app.extensions["gateway.service"]
    store: FeedbackStore = current_app.extensions["gateway.feedback"]
    metrics: GatewayMetrics = current_app.extensions["gateway.metrics"]
    config = service.config
    try:
        limit_body(request, single_body_limit(config.max_upload_bytes, config.max_request_bytes))
        body = single_body(request)
        item = single_image(request, body, config.max_upload_bytes)
        if item.data is None:
            # A record keeps the upload it was made from; pixels are no upload.
            raise BadRequest(
                'feedback needs the image itself: multipart "image", JSON "image" (base64) or an image body',
                code="missing_image",
            )
        fields = correction_fields(request, body)
        # The same decoding and preprocessing as /v1/predict: bad images get its 4xx, and an image the
        # preprocessing finds no digit in is a 422 (nothing stored: there is no model input to keep).
        prepared = service.prepare(item, fields.preprocessing)
        record = store.add(
            Correction(
                upload=item.data,
                model_input=prepared.image,
                label=fields.label,
                predicted=fields.predicted,
                version=fields.version,
                preprocessing=fields.preprocessing,
            )
        )
    except GatewayError as error:
        metrics.feedback_rejected.labels(error.code).inc()
        raise
    metrics.feedback_received.labels(str(record["label"])).inc()
    return jsonify(record), 201


@feedback_api.get("/feedback/stats")
def stats():
    """Corrections stored: total, by label, by served version, held out, trained on per model version."""
    store: FeedbackStore = current_app.extensions["gateway.feedback"]
    return jsonify(store.stats())
