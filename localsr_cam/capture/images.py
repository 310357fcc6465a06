"""Still images for eval, train and the image-folder source: find them in a folder, load
them as ``uint8 H×W×3 BGR``.

Whatever the file holds is turned into 8-bit BGR:

- grayscale (with or without alpha) is repeated into three channels;
- 16-bit samples are scaled to 8 bits with rounding (``round(v / 257)``); float samples
  are read as [0, 1] and clipped;
- an alpha channel is composited onto black (``colour × alpha``), so pixels a viewer sees
  as transparent count as black and hidden colour values under alpha = 0 (which encoders
  fill with anything) never reach the metrics;
- paletted PNGs are expanded by the decoder (then handled as above if they carry
  transparency).

EXIF orientation is applied to 8-bit colour images (JPEGs), as a photo viewer shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from localsr_cam.errors import SourceError
from localsr_cam.paths import refuse_clobbers

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pnm"})
MIN_SIDE = 16


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name; when it
    holds none, those of its ``*_HR`` subfolders (the DIV2K layout), folder by folder.

    Only :data:`IMAGE_EXTENSIONS` (any case) count; hidden files (``.name``, e.g. macOS
    ``._x.jpg`` resource forks) are skipped. Raises :class:`SourceError` when the folder
    is missing, is not a folder, or holds no image file. The files are not opened here:
    :func:`load_image` does that.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise SourceError(f"image folder {folder} {what}")
    found = _images_in(folder)
    if not found:
        for sub in sorted(p for p in _entries(folder) if p.is_dir() and p.name.endswith("_HR")):
            found += _images_in(sub)
    if not found:
        raise SourceError(f"no images in {folder} or its *_HR subfolders (looked for "
                          f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a file with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def image_files(path: Path) -> list[Path]:
    """The images a photo source reads: ``[path]`` for one image file, else the folder's
    (:func:`list_images`, with its errors)."""
    path = Path(path)
    return [path] if is_image_file(path) else list_images(path)


def refuse_photo_clobbers(files: Sequence[tuple[str, Path]],
                          folders: Sequence[tuple[str, Path]], folder: Path,
                          images: Sequence[Path]) -> None:
    """:func:`~localsr_cam.paths.refuse_clobbers` for a command that reads ``images``
    (:func:`list_images`) from ``folder``: no output (``(flag, path)`` files and folders)
    on an image, on ``folder`` or a subfolder the images lie in, or under an image name
    directly in one of those (it would be read as a photo next time)."""
    refuse_clobbers(files, folders, inputs=images,
                    read_folders=[folder, *sorted({path.parent for path in images})],
                    read_suffixes=IMAGE_EXTENSIONS)


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise SourceError(f"cannot list image folder {folder}: {exc.strerror or exc}") from None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in _entries(folder)
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
                  and p.is_file())


def _read_bytes(path: Path) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def _to_unit_float(image: np.ndarray, path: Path | str) -> np.ndarray:
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype in (np.float32, np.float64):
        return np.clip(np.nan_to_num(image.astype(np.float32)), 0.0, 1.0)
    raise SourceError(f"{path} has {image.dtype} samples; 8-bit, 16-bit or float is needed")


def to_bgr_uint8(image: np.ndarray, path: Path | str) -> np.ndarray:
    """Any decoded ``H×W[×C]`` array → ``uint8 H×W×3`` BGR (see the module notes).

    Also the converter of camera and video frames; ``path`` names the source in errors.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 2, 3, 4):
        raise SourceError(f"{path} has {channels} channels; 1 to 4 are supported")
    if image.dtype == np.uint16 and channels in (1, 3):
        eight = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return to_bgr_uint8(eight, path)
    if image.dtype == np.uint8 and channels == 3:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint8 and channels == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    unit = _to_unit_float(image, path)
    has_alpha = channels in (2, 4)
    colour = unit[:, :, : channels - 1] if has_alpha else unit
    if has_alpha:
        colour = colour * unit[:, :, channels - 1:]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return np.ascontiguousarray(np.rint(colour * 255.0).astype(np.uint8))


def load_image(path: Path) -> np.ndarray:
    """Read an image file as ``uint8 H×W×3`` BGR, C-contiguous, owned by the caller.

    Raises :class:`SourceError` (one line naming the file) for a missing or unreadable
    file, one that is not an image, or one smaller than 16×16.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path} is not a readable file")
    data = _read_bytes(path)
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        decoded = None
    if decoded is None:
        raise SourceError(f"{path} is not an image OpenCV can decode")
    if decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3:
        oriented = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation
        if oriented is not None:
            decoded = oriented
    image = to_bgr_uint8(decoded, path)
    height, width = image.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise SourceError(f"{path} is {width}×{height}; images must be at least "
                          f"{MIN_SIDE}×{MIN_SIDE}")
    return image


def crop_even(image: np.ndarray) -> np.ndarray:
    """Drop the last row and/or column so both sides are even (needed for exact 2×).

    Returns a view of ``image`` (no copy); ``H×W[×C]`` any dtype.
    """
    height, width = image.shape[:2]
    return image[: height - height % 2, : width - width % 2]
