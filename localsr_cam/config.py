"""Settings: frozen dataclasses, loadable from a TOML file, overridden by CLI flags.

A TOML file has one table per dataclass (``[capture]``, ``[model]``, ``[blend]``,
``[output]``) whose keys are the field names. An unknown table or key, or a value of the
wrong type, is a :class:`ConfigError` naming it: a typo never silently becomes a default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localsr_cam.errors import ConfigError
from localsr_cam.zoo.registry import DEFAULT_SR_MODEL

BACKGROUNDS = ("keep", "blur")
QUALITY_LEVELS = ("full", "head", "face", "alternate", "plain")
"""The quality ladder's levels, best first (defined in process.deadline.LADDER)."""
DENOISE_CHOICES = ("auto", "off")
"""``--denoise``: the temporal noise reduction of video frames, or none."""
QUALITY_CHOICES = ("auto", *QUALITY_LEVELS)
MIRRORS = ("none", "preview", "call", "both")
MAX_INPUT_SIDE = 8192
"""The longest side a requested input size (``--input``, ``[capture] size``) may have:
8K video (7680×4320, DCI 8192×4320, either way up) fits. Larger requests only ran out of
memory or spent minutes building frames before the first one was refused."""
MAX_OUTPUT_SIDE = 2 * MAX_INPUT_SIDE
"""The longest side of ``--output`` / ``[output] size``: the 2× output of the largest
input."""
MAX_FPS = 1000.0
"""The highest frame rate accepted (``--fps``, ``--output-fps``): above any camera's or
video's (the video reader takes a file's rate of 1000 or more for a broken header), and
video encoders cannot express much higher ones."""
_SIDE_REASONS = {MAX_INPUT_SIDE: "8K video is 7680x4320",
                 MAX_OUTPUT_SIDE: f"2x the largest input, {MAX_INPUT_SIDE}"}
THREADS_WHEN_UNKNOWN = 256
"""The ``threads`` bound where the number of CPUs cannot be read."""


def parse_size(text: str, what: str = "size",
               max_side: int | None = MAX_OUTPUT_SIDE) -> tuple[int, int]:
    """``"640x360"`` → ``(640, 360)``; both sides must be positive integers, neither
    above ``max_side`` (``None``: no bound). ``what`` names the value in the error."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    _check_size((width, height), what, max_side)
    return width, height


def _check_size(size: tuple[int, int], what: str, max_side: int | None) -> None:
    """Refuse a size under 1×1 or with a side over ``max_side`` pixels (``None``: no
    upper bound)."""
    if size[0] < 1 or size[1] < 1:
        raise ConfigError(f"{what} {size[0]}x{size[1]} must be at least 1x1")
    if max_side is not None and max(size) > max_side:
        reason = _SIDE_REASONS.get(max_side)
        raise ConfigError(f"{what} {size[0]}x{size[1]} is too large: at most {max_side} "
                          "pixels a side" + (f" ({reason})" if reason else ""))


def _check_positive(value: float, what: str) -> None:
    """Refuse ``value`` unless it is a finite number above 0."""
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{what} must be a finite number greater than 0, got {value}")


def check_fps(value: float, what: str) -> float:
    """``value`` when it is a usable frame rate: finite, above 0, at most
    :data:`MAX_FPS`; else a :class:`ConfigError` naming ``what``."""
    _check_positive(value, what)
    if value > MAX_FPS:
        raise ConfigError(f"{what} must be at most {MAX_FPS:g} frames a second, got {value:g}")
    return value


def max_threads() -> int:
    """The most CPU threads per network a run may ask for: this machine's CPU count.
    Several networks run at once, each with that many threads, so more than the CPUs
    only makes them wait for each other (100,000 made a run hang with 17 GB)."""
    return os.cpu_count() or THREADS_WHEN_UNKNOWN


def check_threads(value: int, what: str = "threads") -> int:
    """``value`` when it is between 1 and :func:`max_threads`; else a
    :class:`ConfigError` naming ``what``."""
    if value < 1:
        raise ConfigError(f"{what} must be at least 1, got {value}")
    limit = max_threads()
    if value > limit:
        raise ConfigError(f"{what} must be at most {limit} (this machine's CPUs; it is per "
                          f"network and several run at once), got {value}")
    return value


def _check_unit(value: float, what: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{what} must be between 0 and 1, got {value}")


def check_background(value: str) -> str:
    """``keep``, ``blur`` or ``image:PATH`` (the file is read when the run starts)."""
    if value in BACKGROUNDS or (value.startswith("image:") and value[len("image:"):]):
        return value
    raise ConfigError(f"unknown background {value!r}; choose one of: "
                      f"{', '.join(BACKGROUNDS)}, image:PATH")


@dataclasses.dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from.

    ``source``: ``auto`` (camera 0 if one opens, else the synthetic clip), a camera index,
    a device path, a video file, a folder of images, or ``synthetic``. ``size``: requested
    input (width, height); ``None`` keeps the source's own size (a camera is asked for
    640×360; the synthetic clip is 640×360). ``paced``: deliver image folders and the
    synthetic clip at ``fps`` (video files at their own rate) like a camera; False = as
    fast as the processor takes them.
    """

    source: str = "auto"
    size: tuple[int, int] | None = None
    fps: float = 30.0
    loop: bool = False
    paced: bool = True

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ConfigError("the source is empty: give a camera index, device path, "
                              "video file, image folder or 'synthetic'")
        check_fps(self.fps, "capture fps")
        if self.size is not None:
            _check_size(self.size, "input size", MAX_INPUT_SIDE)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which networks run where.

    ``model``: ``fast``, ``paper``, ``bicubic`` or ``bilinear``. ``segmenter``: ``auto``
    (close-up or people, from what the face finder sees), ``people`` (a selfie crop per
    face found), ``selfie``, ``selfie-landscape`` or ``maskrcnn``. ``backend``:
    ``auto``, ``cpu``, ``cuda`` or ``tensorrt``. ``threads``: CPU threads per engine;
    ``None`` lets the processor choose (:func:`localsr_cam.process.processor.engine_threads`).
    ``weights``: a Mask R-CNN weights file (torchvision's cache otherwise).
    ``quality``: ``auto`` (a paced run adapts the level to the frame budget, see
    :mod:`localsr_cam.process.deadline`) or one fixed level: ``full``, ``head``,
    ``face``, ``alternate``, ``plain``. ``precision``: the SR net's arithmetic, ``auto``
    (int8 on the ``cpu`` backend where the model has an int8 file), ``fp32`` or ``int8``
    (see :data:`localsr_cam.zoo.registry.PRECISIONS`). ``denoise``: ``auto`` (video
    frames go through :mod:`localsr_cam.process.temporal` first, which filters only
    when it reads sensor noise) or ``off``.
    """

    model: str = DEFAULT_SR_MODEL
    segmenter: str = "auto"
    backend: str = "auto"
    threads: int | None = None
    weights: str | None = None
    quality: str = "auto"
    precision: str = "auto"
    denoise: str = "auto"

    def __post_init__(self) -> None:
        from localsr_cam.runtime.base import BACKENDS
        from localsr_cam.zoo.registry import PRECISIONS, segmenter_choices, sr_choices

        for value, choices, what in ((self.model, sr_choices(), "model"),
                                     (self.segmenter, segmenter_choices(), "segmenter"),
                                     (self.backend, BACKENDS, "backend"),
                                     (self.quality, QUALITY_CHOICES, "quality"),
                                     (self.precision, PRECISIONS, "precision"),
                                     (self.denoise, DENOISE_CHOICES, "denoise")):
            if value not in choices:
                raise ConfigError(f"unknown {what} {value!r}; choose one of: "
                                  f"{', '.join(choices)}")
        if self.threads is not None:
            check_threads(self.threads)


@dataclasses.dataclass(frozen=True)
class BlendConfig:
    """How the mask is smoothed and how SR is blended back.

    ``ema``: weight of the previous smoothed mask (0 = no temporal smoothing).
    ``threshold_low``/``threshold_high``: hysteresis thresholds on the probability.
    ``despeckle``: radius of the opening that removes small blobs, in pixels at the
    segmenter's resolution (0 = off).
    ``feather_px``: width of the soft edge in input pixels. ``context_px``: padding
    around the person box in input pixels. ``bucket``: box sizes round up to multiples
    of this (``None``: by backend, :func:`localsr_cam.process.processor.box_bucket`).
    ``full_frame``: super-resolve the whole frame instead of the person box.
    ``background``: ``keep`` or ``blur`` the upscaled background, or ``image:PATH`` to
    replace it with a picture. ``upscale``: how the
    background is upscaled, ``bicubic`` (default: as cheap as bilinear with OpenCV, and
    the output is then never below the bicubic baseline outside the person) or
    ``bilinear``.
    """

    ema: float = 0.6
    threshold_low: float = 0.35
    threshold_high: float = 0.6
    despeckle: int = 1
    feather_px: int = 4
    context_px: int = 16
    bucket: int | None = None
    full_frame: bool = False
    background: str = "keep"
    upscale: str = "bicubic"

    def __post_init__(self) -> None:
        _check_unit(self.ema, "ema")
        _check_unit(self.threshold_low, "threshold_low")
        _check_unit(self.threshold_high, "threshold_high")
        if self.threshold_low > self.threshold_high:
            raise ConfigError("threshold_low must not exceed threshold_high")
        if self.feather_px < 0 or self.context_px < 0 or self.despeckle < 0:
            raise ConfigError("feather_px, context_px and despeckle must not be negative")
        if self.bucket is not None and self.bucket < 1:
            raise ConfigError(f"bucket must be at least 1, got {self.bucket}")
        from localsr_cam.zoo.registry import SR_BASELINES

        if self.upscale not in SR_BASELINES:
            raise ConfigError(f"unknown upscale {self.upscale!r}; choose bicubic or bilinear")
        check_background(self.background)


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """Where frames go and when to stop.

    ``sinks``: sink specs (``virtualcam[:DEVICE]``, ``preview``, ``file:PATH``, ``null``);
    empty = chosen by the source. ``fps``: output pace; ``None`` = the capture fps.
    ``frames``: stop after this many processed frames; ``None`` = until stopped.
    ``size``: (width, height) of the frames sent to the sinks; ``None`` = 2× the input.
    Frames are super-resolved 2× and then resized to it (aspect kept, black bars).
    ``mirror``: flip left-right what goes to ``preview`` (the self view), ``call`` (the
    virtual camera and files), ``both``, or ``none``.
    """

    sinks: tuple[str, ...] = ()
    fps: float | None = None
    frames: int | None = None
    size: tuple[int, int] | None = None
    mirror: str = "none"

    def __post_init__(self) -> None:
        if self.size is not None:
            _check_size(self.size, "output size", MAX_OUTPUT_SIDE)
            if self.size[0] % 2 or self.size[1] % 2:
                raise ConfigError(f"output size {self.size[0]}x{self.size[1]} must have an "
                                  "even width and height (video encoders need it)")
        if self.mirror not in MIRRORS:
            raise ConfigError(f"unknown mirror {self.mirror!r}; choose one of: "
                              f"{', '.join(MIRRORS)}")
        if self.fps is not None:
            check_fps(self.fps, "output fps")
        if self.frames is not None and self.frames < 1:
            raise ConfigError(f"frames must be at least 1, got {self.frames}")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """All settings of one run."""

    capture: CaptureConfig = CaptureConfig()
    model: ModelConfig = ModelConfig()
    blend: BlendConfig = BlendConfig()
    output: OutputConfig = OutputConfig()


SECTIONS: dict[str, type] = {
    "capture": CaptureConfig,
    "model": ModelConfig,
    "blend": BlendConfig,
    "output": OutputConfig,
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a TOML value against a field annotation; convert lists to tuples."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(value, options[0], where)
    if origin is tuple:
        if isinstance(value, str) and typing.get_args(annotation) == (int, int):
            return parse_size(value, where, max_side=None)  # bounded by the section
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__}")
        args = typing.get_args(annotation)
        item_type = args[0]
        if args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, item_type, where) for v in value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, str, bool, float):
        if type(value) is not annotation:
            raise ConfigError(f"{where} must be {annotation.__name__}, "
                              f"got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type")  # pragma: no cover


def _section(cls: type, table: Mapping[str, Any], name: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key {key!r} in [{name}]; known keys: "
                              f"{', '.join(sorted(known))}")
        values[key] = _coerce(value, hints[key], f"[{name}] {key}")
    return cls(**values)


def load_config(path: Path) -> PipelineConfig:
    """Read a TOML file into a :class:`PipelineConfig` (missing keys keep defaults)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    parts = {}
    for name, table in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown table [{name}] in {path}; known tables: "
                              f"{', '.join(SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] in {path} must be a table")
        parts[name] = _section(SECTIONS[name], table, name)
    return PipelineConfig(**parts)


def with_overrides(config: PipelineConfig, overrides: Mapping[str, Mapping[str, Any]]
                   ) -> PipelineConfig:
    """A copy of ``config`` with ``{section: {field: value}}`` replaced (CLI flags).

    Values here are already typed by argparse; ``None`` means "flag not given".
    """
    parts = {}
    for name, values in overrides.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            parts[name] = dataclasses.replace(getattr(config, name), **given)
    return dataclasses.replace(config, **parts)
