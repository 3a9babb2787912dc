"""Still images, read with Pillow: the header first (size, orientation), then a decode bounded by the limits.

Pillow, not FFmpeg, reads images: it applies EXIF orientation, converts CMYK, palette, alpha and 16-bit modes,
and its header parse never allocates the picture, so a decompression bomb is refused from its declared size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from PIL import ImageOps

from deployments.contract.limits import MediaLimits
from deployments.media import MediaError, MediaInfo

_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90 or 270 degrees


def _open(path: Path) -> PIL.Image.Image:
    try:
        return PIL.Image.open(path)
    except PIL.Image.DecompressionBombError:  # Pillow's cap is twice MAX_IMAGE_PIXELS (apply_decoder_limits)
        declared = 2 * (PIL.Image.MAX_IMAGE_PIXELS or 0)
        raise MediaError(f"the image declares over {declared} pixels (limits.image.max_pixels)") from None
    except Exception as exc:  # a hostile file makes Pillow's parsers raise many types; each means "not readable"
        raise MediaError(f"cannot read the image ({type(exc).__name__})") from None


def probe_image(path: str | Path) -> MediaInfo:
    """An image's size as displayed (EXIF orientation applied) and its file size, from the header alone."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        except Exception:  # a broken EXIF block is ignored, as viewers do
            orientation = 1
        metadata = sum(len(value) for value in image.info.values() if isinstance(value, (bytes, str)))
    if orientation in _TRANSPOSED:
        width, height = height, width
    return MediaInfo(
        has_video=True,
        has_audio=False,
        width=width,
        height=height,
        frames=1,
        streams=1,
        path=str(path),
        metadata_bytes=metadata,
        file_bytes=path.stat().st_size,
    )


def read_image(path: str | Path, limits: MediaLimits) -> PIL.Image.Image:
    """The image's first frame, upright and RGB, decoded only if its header is within `limits`."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
            raise MediaError(f"{width}x{height} is over the image limits")
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
        except Exception as exc:  # truncated data, a broken chunk: Pillow raises OSError, SyntaxError, ValueError...
            raise MediaError(f"cannot decode the image ({type(exc).__name__})") from None


def _to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """8-bit RGB from any mode: 16- and 32-bit greys are scaled (a plain convert would clip them to white)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = PIL.Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        canvas = PIL.Image.new("RGBA", image.size, (0, 0, 0, 255))  # transparent parts shown on black
        return PIL.Image.alpha_composite(canvas, image).convert("RGB")
    return image.convert("RGB")


def image_array(path: str | Path, limits: MediaLimits, pixel_format: str = "bgr24") -> np.ndarray:
    """`read_image` as an HxWx3 uint8 array, BGR (OpenCV's order) or RGB."""
    array = np.asarray(read_image(path, limits))
    return np.ascontiguousarray(array[..., ::-1]) if pixel_format == "bgr24" else array
