"""Untrusted request input -> what the preprocessing needs, with caps checked before any costly work."""

from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.images import MIN_IMAGE_SIDE

MAX_IMAGE_SIDE = 2048  # pixels; checked from the image header, before the pixels are decoded
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")  # decoders the app lets Pillow use
DATA_URL = re.compile(r"data:(image/[\w.+-]+)?(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


class BadInputError(ValueError):
    """The request's drawing or image cannot be used; the message says what was expected."""


def decode_data_url(text: str) -> Image.Image:
    """A ``data:image/...;base64,`` URL -> a decoded PIL image between MIN_IMAGE_SIDE and MAX_IMAGE_SIDE a side."""
    match = DATA_URL.match(text)
    if match is None:
        raise BadInputError("`image` must be a data URL like 'data:image/png;base64,...'. "
                            f"Received: {text[:40]!r}")
    try:
        payload = base64.b64decode(text[match.end():], validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError("`image` holds invalid base64 data") from None
    return decode_image_bytes(payload)


def decode_image_bytes(payload: bytes) -> Image.Image:
    """Open an encoded image, check its size from the header, then decode its first frame."""
    try:
        image = Image.open(io.BytesIO(payload), formats=IMAGE_FORMATS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise BadInputError(f"`image` is not a readable image (expected one of: {', '.join(IMAGE_FORMATS)})") \
            from None
    width, height = image.size
    if max(width, height) > MAX_IMAGE_SIDE:
        raise BadInputError(f"The image is too large: at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels. "
                            f"Received {width}x{height}")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise BadInputError(f"The image is too small to hold a drawing: at least {MIN_IMAGE_SIDE}x"
                            f"{MIN_IMAGE_SIDE} pixels. Received {width}x{height}")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise BadInputError("`image` is truncated or corrupt: it could not be decoded") from None
    return image


def png_data_url(bitmap: np.ndarray) -> str:
    """A (28, 28) uint8 bitmap as a PNG data URL, for showing what the model saw."""
    buffer = io.BytesIO()
    Image.fromarray(bitmap, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
