"""The seed's design, kept as the benchmark baseline: Flask calling Keras `model.predict` in-process.

Run: python -m bench.seed_app --model models/mnist/1 --port 5000 (Flask's threaded server, as the
seed ran it). Same routes as the gateway's predict: multipart `image` or JSON `pixels`.
"""

import argparse
import io
import os

import numpy as np
from flask import Flask, jsonify, request
from PIL import Image

from contract.mnist import IMAGE_HEIGHT, IMAGE_WIDTH, PROBABILITIES_KEY


def load_model(path: str):
    """The SavedModel wrapped as a Keras model (Keras 3 loads SavedModels through TFSMLayer)."""
    import keras

    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    model = keras.Sequential([keras.Input(shape=(IMAGE_HEIGHT, IMAGE_WIDTH, 1)), layer])
    return model


def create_seed_app(model_path: str) -> Flask:
    """The seed's Flask app: decode, grayscale, resize, scale, then model.predict per request."""
    model = load_model(model_path)
    app = Flask(__name__)

    def predict(image: np.ndarray):
        outputs = model.predict(image[np.newaxis, :, :, np.newaxis], verbose=0)
        probabilities = np.asarray(outputs[PROBABILITIES_KEY] if isinstance(outputs, dict) else outputs)[0]
        digit = int(np.argmax(probabilities))
        return jsonify(
            {
                "digit": digit,
                "confidence": float(probabilities[digit]),
                "probabilities": probabilities.astype(float).tolist(),
            }
        )

    @app.post("/v1/predict")
    def predict_route():
        if "image" in request.files:
            picture = Image.open(io.BytesIO(request.files["image"].read())).convert("L")
            picture = picture.resize((IMAGE_WIDTH, IMAGE_HEIGHT))
            return predict(np.asarray(picture, np.float32) / 255.0)
        pixels = np.asarray(request.get_json()["pixels"], np.float32)
        return predict(pixels / 255.0 if pixels.max() > 1 else pixels)

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app


def main() -> None:
    """Serve the seed app with Flask's threaded development server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/mnist/1", help="SavedModel version directory")
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    create_seed_app(args.model).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
