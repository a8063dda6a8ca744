"""Untrusted request input -> what the preprocessing needs, with caps checked before any costly work."""

from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np
from PIL import Image

from ..budget import DEFAULT_BUDGET, Budget
from ..serving import DamagedImageError, UnreadableImageError, open_image

MAX_IMAGE_SIDE = DEFAULT_BUDGET.max_upload_side  # pixels; checked from the image header, before decoding
DATA_URL = re.compile(r"data:(image/[\w.+-]+)?(;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


class BadInputError(ValueError):
    """The request's drawing or image cannot be used; the message says what was expected."""


def decode_data_url(text: str, budget: Budget = DEFAULT_BUDGET) -> Image.Image:
    """A ``data:image/...;base64,`` URL -> a decoded PIL image between MIN_IMAGE_SIDE and MAX_IMAGE_SIDE a side."""
    match = DATA_URL.match(text)
    if match is None:
        raise BadInputError("`image` must be a data URL like 'data:image/png;base64,...'. "
                            f"Received: {text[:40]!r}")
    try:
        payload = base64.b64decode(text[match.end():], validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError("`image` holds invalid base64 data") from None
    return decode_image_bytes(payload, budget)


def decode_image_bytes(payload: bytes, budget: Budget = DEFAULT_BUDGET) -> Image.Image:
    """Open an encoded image, check its size from the header (at most ``budget.max_upload_side`` a side), then
    decode its first frame."""
    try:
        return open_image(io.BytesIO(payload), budget, max_side=budget.max_upload_side)
    except UnreadableImageError as error:
        raise BadInputError(f"`image` is not a readable image ({error})") from None
    except DamagedImageError:
        raise BadInputError("`image` is truncated or corrupt: it could not be decoded") from None
    except ValueError as error:
        raise BadInputError(f"`image`: {error}") from None


def png_data_url(bitmap: np.ndarray) -> str:
    """A (28, 28) uint8 bitmap (or an image model's (height, width, 1 | 3)) as a PNG data URL, for showing what
    the model saw."""
    buffer = io.BytesIO()
    if bitmap.ndim == 3:
        bitmap = bitmap[:, :, 0] if bitmap.shape[2] == 1 else bitmap
    Image.fromarray(bitmap, mode="L" if bitmap.ndim == 2 else "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
