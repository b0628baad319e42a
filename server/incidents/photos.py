"""Photos: recognised by their content (JPEG, PNG, WebP), size-limited, and re-encoded without
metadata so EXIF (camera GPS, serial numbers, owner names) never reaches storage.

The photo's own GPS position is read before cleaning and offered back to the caller as a
suggested location; it is not stored.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import InvalidInput, PayloadTooLarge

MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PHOTOS = 4
_MAX_MB = MAX_PHOTO_BYTES // 1024 // 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_GPS_IFD = 0x8825


@dataclass(frozen=True)
class CleanPhoto:
    content_type: str
    content: bytes
    width: int
    height: int
    sha256: bytes
    gps: tuple[float, float] | None  # (lon, lat) from the original EXIF, if any


def clean_photo(raw: bytes, *, field: str = "photos") -> CleanPhoto:
    if len(raw) > MAX_PHOTO_BYTES:
        raise PayloadTooLarge(
            f"照片不能超过 {_MAX_MB} MB / a photo may have at most {_MAX_MB} MiB",
            field=field,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            kind = image.format
            if kind not in _FORMATS:
                raise InvalidInput(
                    "照片须为 JPEG、PNG 或 WebP / a photo must be JPEG, PNG or WebP", field=field
                )
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInput("照片像素过多 / the photo has too many pixels", field=field)
            gps = _exif_gps(image)
            image = ImageOps.exif_transpose(image)  # keep the orientation EXIF described
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        raise InvalidInput(
            "无法读取照片 / the photo is not a readable JPEG, PNG or WebP image", field=field
        ) from error
    content = _encode(image, kind)
    return CleanPhoto(
        _FORMATS[kind], content, image.width, image.height, hashlib.sha256(content).digest(), gps
    )


def _encode(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88)
    elif kind == "PNG":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=85)
    return out.getvalue()


def _exif_gps(image: Image.Image) -> tuple[float, float] | None:
    try:
        gps = image.getexif().get_ifd(_GPS_IFD)
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    return lon, lat


def _degrees(dms, ref, negative_ref: str) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).upper().startswith(negative_ref) else value
