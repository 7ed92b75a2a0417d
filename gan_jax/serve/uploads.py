"""Image uploads: PNG or JPEG bytes -> the model's uint8 input [H, W, C], refusing anything that
could cost more than its size says.

The order of the checks is what makes it safe: the body's size is bounded before it is read
(`max_body_bytes`, in the middleware); Pillow's `Image.open` parses only the header, so the
declared width and height are checked against `ImageLimits` before a pixel is decoded, and a
small PNG that declares 20000 x 20000 is refused without allocating its 1.2 GB. Pillow's own
decompression-bomb guard (`Image.MAX_IMAGE_PIXELS`) stays on behind ours. Decoding and resizing
are the training path's (`gan_jax.data.images`), so the server sees the pixels the model did.

Errors (an `ApiError`, the field named): 415 not a PNG/JPEG (or the wrong content type), 413
dimensions over the limits, 422 a corrupt or truncated image, 400 an empty body.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import numpy as np

from gan_jax.data import images
from gan_jax.serve.schemas import ApiError

IMAGE_TYPES = ("image/png", "image/jpeg")
FORMATS = ("PNG", "JPEG")


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_side: int = 8192  # pixels, width and height each
    max_pixels: int = 4096 * 4096  # width x height: ~50 MB once decoded to RGB

    def __post_init__(self):
        if self.max_side < 1 or self.max_pixels < 1:
            raise ValueError(f"image limits must be >= 1, got {self}")


def check_content_type(content_type: str) -> None:
    """415 unless the media type (parameters ignored) is image/png or image/jpeg."""
    if content_type not in IMAGE_TYPES:
        raise ApiError(
            415,
            f"content type {content_type!r} is not supported; send the image as the body "
            f"with Content-Type {' or '.join(IMAGE_TYPES)}",
        )


def decode_image(data: bytes, shape: Sequence[int], limits: ImageLimits, field: str = "body") -> np.ndarray:
    """uint8 `shape` (H, W, C) from PNG or JPEG bytes (either, whatever the declared type),
    converted and resized as the training data was (`images.pil_to_model_input`)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(400, "the image is empty; expected PNG or JPEG bytes", field)
    try:
        pil = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise ApiError(
            415, "not a PNG or JPEG image (no PNG or JPEG header found); expected PNG or JPEG bytes", field
        ) from None
    except Image.DecompressionBombError as e:
        raise ApiError(413, f"the image is a decompression bomb ({e})", field) from None
    except (OSError, SyntaxError, ValueError) as e:  # a recognised header that does not parse
        problem = f"the {_format_of(data)} image header is corrupt or truncated ({_first_line(e)})"
        raise ApiError(422, f"{problem}; expected a complete image", field) from None
    with pil:
        _check_size(pil.size, limits, pil.format, field)
        try:
            pil.load()
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ApiError(
                422,
                f"the {pil.format} image data is corrupt or truncated ({_first_line(e)}); "
                "expected a complete image",
                field,
            ) from None
        return images.pil_to_model_input(pil, shape)


def _check_size(size: tuple[int, int], limits: ImageLimits, fmt: str, field: str) -> None:
    width, height = size
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ApiError(
            413,
            f"the {fmt} image declares {width} x {height} pixels; this server takes at most "
            f"{limits.max_side} per side and {limits.max_pixels} in all",
            field,
        )


def _format_of(data: bytes) -> str:
    return "PNG" if data.startswith(b"\x89PNG") else "JPEG"


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
