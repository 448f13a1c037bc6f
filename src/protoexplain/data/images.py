"""Decode any image file to an 8-bit RGB PIL image, with one-line errors naming the file.

Policy for unusual source modes:

* grayscale (``1``, ``L``), palette (``P``), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: converted by
  PIL (Adobe-inverted CMYK JPEGs are handled by PIL's decoder);
* an alpha channel (``RGBA``, ``LA``, ``PA``, ``RGBa``, palette with transparency) is composited
  on a **white** background (transparent pixels become white, not black);
* 16-bit integer images (``I;16``, ``I;16B``, ``I;16L``, and ``I`` holding values above 255) are
  scaled from 0..65535 to 0..255 (``v * 255 / 65535``, rounded), not clipped;
* 32-bit float images (``F``) are read as 0..1 when their maximum is ≤ 1, else as 0..255, then
  clipped.

EXIF orientation is *not* applied: pixel coordinates stay those of the stored image, which is what
bounding-box annotations (CUB-200-2011) refer to.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from protoexplain.errors import UserError
from protoexplain.fileio import atomic_path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


#: Default limit on width × height: far above photographs (CUB's largest is under 1 megapixel, a
#: 50-megapixel camera frame passes) and far below what exhausts memory when decoded.
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
#: Environment variable that sets the limit for every command and its data-loader workers.
MAX_PIXELS_VARIABLE = "PROTOEXPLAIN_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel limit in force: ``$PROTOEXPLAIN_MAX_IMAGE_PIXELS`` or the default."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise UserError(
            f"{MAX_PIXELS_VARIABLE}={text!r} is not a positive whole number of pixels; unset it "
            f"for the default ({DEFAULT_MAX_IMAGE_PIXELS:,})"
        )
    return value


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a visible file whose extension is a known image type."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Read ``path`` fully and return an 8-bit RGB image (see the module docstring for modes).

    Raises :class:`UserError` naming the file when it is missing, empty, truncated, not an image,
    or larger than :func:`max_image_pixels` (checked from the header, before decoding: a
    decompression bomb never allocates its pixels).
    """
    path = Path(path)
    limit = max_image_pixels()
    try:
        if path.stat().st_size == 0:
            raise UserError(
                f"cannot read image {path}: the file is empty (0 bytes); replace or remove it"
            )
        # Pillow's own knob, set to our limit: it raises above twice the limit while reading the
        # header; between the limit and twice it we refuse from the header's size.
        Image.MAX_IMAGE_PIXELS = limit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if image.width * image.height > limit:
                raise _too_large(path, f"{image.width}×{image.height}", limit)
            image.load()
            return to_rgb(image)
    except UserError:
        raise
    except Image.DecompressionBombError:
        raise _too_large(path, "more than twice that", limit) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"cannot read image {path}: {reason}; replace or remove the file"
        ) from error


def _too_large(path: Path, size: str, limit: int) -> UserError:
    return UserError(
        f"cannot read image {path}: {size} pixels, above the limit of {limit:,} pixels (a "
        f"decompression bomb?); replace the file, or raise the limit with {MAX_PIXELS_VARIABLE}=N"
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit RGB (policy in the module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT_MODES or values.max(initial=0) > 255:
            values = values * (255.0 / 65535.0)
        return _gray_array_to_rgb(values)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) <= 1.0:
            values = values * 255.0
        return _gray_array_to_rgb(values)
    return image.convert("RGB")


def _gray_array_to_rgb(values: np.ndarray) -> Image.Image:
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2))


def save_image(image: Image.Image, path: str | os.PathLike, quality: int = 95) -> None:
    """Write ``image`` atomically; the format follows the extension (JPEG at ``quality``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in (".jpg", ".jpeg"):
            image.save(tmp, format="JPEG", quality=quality)
        elif suffix == ".png":
            image.save(tmp, format="PNG")
        else:
            raise ValueError(f"unsupported output format {suffix!r}; use .jpg or .png")
