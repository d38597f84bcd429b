"""Draw an attribution map as a colour heat-map over the 28x28 image the model saw, as PNG bytes."""

import cv2
import numpy as np

# 28 px -> 224 px, nearest neighbour: each model pixel stays a crisp square in a browser.
UPSCALE = 8
# How much of the input shows where the attribution is zero: dimmed, so the heat stands out.
BASE_BRIGHTNESS = 0.6


def heat(attribution: np.ndarray) -> np.ndarray:
    """Positive attribution scaled to [0, 1] by its maximum (all zero when nothing is positive)."""
    positive = np.maximum(np.asarray(attribution, np.float32), 0.0)
    peak = float(positive.max(initial=0.0))
    return positive / peak if peak > 0 else np.zeros_like(positive)


def heatmap_png(image: np.ndarray, attribution: np.ndarray, upscale: int = UPSCALE) -> bytes:
    """PNG of `attribution`'s positive part (inferno colours) blended over `image` ([0, 1], 28x28).

    Each pixel's opacity is its heat, so pixels that did not push towards the digit show the input.
    """
    weight = heat(attribution)[..., np.newaxis]
    colours = cv2.applyColorMap(np.round(weight[..., 0] * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    gray = np.clip(np.asarray(image, np.float32).reshape(weight.shape[:2]), 0.0, 1.0)
    base = np.repeat(gray[..., np.newaxis] * BASE_BRIGHTNESS * 255.0, 3, axis=2)
    blended = base * (1.0 - weight) + colours.astype(np.float32) * weight
    pixels = np.round(blended).astype(np.uint8)
    pixels = cv2.resize(pixels, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_NEAREST)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()
