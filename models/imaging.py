"""Image conventions shared by training, evaluation and the server.

Images are uint8 RGB arrays of shape (H, W, 3). Masks on disk are RGB PNGs with one channel at 255 per pixel
(red background, green other people, blue the target); in memory a mask is a uint8 class map of shape (H, W)
with 0 background, 1 other people, 2 the target. Network inputs are float32, scaled as ``(x / 255 - 0.5) * 2``.
Resizing is PIL bilinear, what ``scipy.misc.imresize`` did for the original project.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

NUM_CLASSES = 3
PEOPLE_CLASS = 1
TARGET_CLASS = 2


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 (H, W, C) image to (size, size, C) with PIL bilinear; returns the input when it fits."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def scale_input(image: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to the network's float32 range [-1, 1]."""
    return (image.astype(np.float32) / 255.0 - 0.5) * 2.0


def prepare_input(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 RGB image to the model size and scale it: what training and evaluation feed the network."""
    return scale_input(resize_rgb(image, size))


def mask_to_classes(mask_rgb: np.ndarray) -> np.ndarray:
    """Class map (H, W) uint8 from an RGB mask: the argmax over channels."""
    return np.argmax(mask_rgb, axis=-1).astype(np.uint8)


def classes_to_mask(classes: np.ndarray) -> np.ndarray:
    """RGB mask (H, W, 3) uint8 with 255 in the channel of each pixel's class."""
    return (np.eye(NUM_CLASSES, dtype=np.uint8)[classes] * 255).astype(np.uint8)


def resize_mask(mask_rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB mask bilinearly and re-derive each pixel's class by argmax; returns a class map."""
    return mask_to_classes(resize_rgb(mask_rgb, size))
