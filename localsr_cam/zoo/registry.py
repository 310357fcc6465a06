"""The model registry: one entry per model, from which every model list derives.

Each :class:`ModelSpec` says what a model is (kind, input size), where its files are
(names inside the engines folder), how a user makes them (fetch or train), and how it is
built, loaded and exported (functions, usually from :mod:`localsr_cam.zoo.recipes`).
The command-line choices, ``models list``, ``train``, ``bench``, the ONNX export and the
backends all read :data:`MODELS`, so adding a model is its module plus one entry here
(or one :func:`register_model` call).

Cheap to import: the entries' functions import torch and the models when called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.errors import ConfigError
from localsr_cam.zoo import recipes

if TYPE_CHECKING:
    from torch import nn

    from localsr_cam.runtime.base import Engine

FETCH_COMMAND = "localsr-cam models fetch"
QUANTIZE_COMMAND = "localsr-cam models quantize"
KINDS = ("segment", "sr", "detect")
PRECISIONS = ("auto", "fp32", "int8")
"""How an SR net's arithmetic is chosen: ``auto`` = int8 on the ``cpu`` backend where the
model has an int8 file, each backend's own precision elsewhere; ``fp32`` = float32 ONNX
on the ``cpu`` backend; ``int8`` = insist on the int8 file (``cpu`` backend only)."""

Loader = Callable[[str, Path, Mapping[str, Any]], "nn.Module"]
"""``(model name, weights file, config from the manifest) -> module in eval mode``."""
Opener = Callable[[str, str, int, "str | None"], "Engine"]
"""``(model name, resolved backend, CPU threads, weights) -> opened engine``."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the project knows about one model, before any file is read.

    ``kind``: ``"segment"``, ``"sr"`` or ``"detect"`` (the face detector, run on tiles by
    :mod:`localsr_cam.process.faces`). ``input_size``: the fixed (H, W) input of a
    segmenter or detector; ``None`` where any size works (the SR models take person-box crops).
    ``onnx``/``weights``: file names inside the engines folder (``None``: no such file).
    ``onnx_int8``: the int8 ONNX the CPU backend runs by default (``None``: float32
    only; see :mod:`localsr_cam.train.quantize`).
    ``build_command``: what a user runs to (re)create the files (fetch or train).
    ``build``: a fresh, untrained module from constructor arguments (trainable models).
    ``load``: the trained module from its files (see :data:`Loader`); when ``None`` and
    ``build`` is set, the plain state dict in ``weights`` is loaded into ``build(**config)``.
    ``export``: writes the module's ONNX. ``open``: a custom opener for models that run
    in another library (Mask R-CNN in torchvision); it replaces the generic backends.
    ``train_defaults``: the training recipe's defaults (loss, scheduler, patch, ...);
    ``train_config``: the constructor arguments from the training flags (``width``,
    ``depth``, ``dropout``, ``residual`` as keywords; each model takes what it uses).
    ``mjpeg_variant_of``: this SR model is the MJPEG variant of that one, trained on
    MJPEG frames only: the other model's engine hands it the frames whose estimated JPEG
    level says MJPEG (:mod:`localsr_cam.runtime.routed`), and ``train`` compares it with
    that model while it has no files of its own.
    """

    name: str
    kind: str
    onnx: str | None
    weights: str | None
    build_command: str
    description: str
    input_size: tuple[int, int] | None = None
    build: Callable[..., nn.Module] | None = None
    load: Loader | None = None
    export: Callable[[nn.Module, Path], None] | None = None
    open: Opener | None = None
    train_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train_config: Callable[..., dict[str, Any]] | None = None
    onnx_int8: str | None = None
    mjpeg_variant_of: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"model {self.name!r}: kind must be one of {KINDS}")

    @property
    def trainable(self) -> bool:
        return self.build is not None


def repair_hint(name: str) -> str:
    """What fixes a corrupt or changed file of model ``name``, as a clause.

    A shipped model (the trainable ones, trained by us and tracked in git) is restored,
    not retrained (training takes minutes and data folders); a converted one is rebuilt
    by its command.
    """
    spec = model_spec(name)
    if spec.trainable:
        files = " ".join(f"engines/{f}" for f in (spec.onnx, spec.onnx_int8, spec.weights)
                         if f)
        return (f"restore the shipped file: `git checkout -- {files}` in the project "
                "folder, or reinstall localsr-cam")
    return f"rebuild it with `{spec.build_command}`"


def _open_maskrcnn(name: str, backend: str, threads: int, weights: str | None) -> Engine:
    from localsr_cam.runtime.maskrcnn import MaskRCNNEngine

    device = "cuda" if backend in ("cuda", "tensorrt") else "cpu"
    return MaskRCNNEngine(weights, device=device, threads=threads).open()


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS` (a name already there is a :class:`ConfigError`)."""
    if spec.name in MODELS or spec.name in SR_BASELINES or spec.name == "auto":
        raise ConfigError(f"model {spec.name!r} is already registered")
    MODELS[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Remove model ``name`` from :data:`MODELS` (tests and plug-ins)."""
    MODELS.pop(name, None)


FAST_TRAIN_DEFAULTS: Mapping[str, Any] = {"loss": "l1", "scheduler": "cosine", "patch": 96,
                                          "batch": 16, "lr": 2e-3, "width": 16}
"""FastUNet's training recipe defaults (its MJPEG variant adds its own to them)."""

SR_BASELINES = ("bicubic", "bilinear")
"""Plain upscales offered wherever an SR model is chosen; not models."""
DEFAULT_SR_MODEL = "fast"
"""The model every command uses unless told otherwise."""

for _spec in (
    ModelSpec("selfie", "segment", "selfie.onnx", "selfie.pt", FETCH_COMMAND,
              "MediaPipe selfie segmenter, general (256×256 input)",
              input_size=(256, 256), load=recipes.load_selfie),
    ModelSpec("selfie-landscape", "segment", "selfie_landscape.onnx", "selfie_landscape.pt",
              FETCH_COMMAND, "MediaPipe selfie segmenter, landscape (144×256 input)",
              input_size=(144, 256), load=recipes.load_selfie),
    ModelSpec("face", "detect", "face_full_range.onnx", "face_full_range.pt", FETCH_COMMAND,
              "MediaPipe full-range face detector (192×192 tiles, 2304 anchors)",
              input_size=(192, 192), load=recipes.load_face),
    ModelSpec("maskrcnn", "segment", None, None,
              "localsr-cam run --segmenter maskrcnn --weights PATH",
              "torchvision Mask R-CNN (ResNet-50 FPN v2), the paper's segmenter",
              open=_open_maskrcnn),
    ModelSpec("fast", "sr", "fast_unet.onnx", "fast_unet.pt",
              "localsr-cam train --model fast",
              "FastUNet: LR-space residual U-Net with PixelShuffle, for real time",
              build=recipes.build_fast_unet, export=recipes.export_sr,
              train_defaults=FAST_TRAIN_DEFAULTS,
              train_config=recipes.fast_unet_config, onnx_int8="fast_unet.int8.onnx"),
    ModelSpec("fast-jpeg", "sr", "fast_jpeg_unet.onnx", "fast_jpeg_unet.pt",
              "localsr-cam train --model fast-jpeg",
              "FastUNet trained on MJPEG frames only; fast switches to it on MJPEG input",
              build=recipes.build_fast_unet, export=recipes.export_sr,
              train_defaults={**FAST_TRAIN_DEFAULTS, "jpeg_share": 1.0,
                              "val_suites": "lossy,mjpeg,lowlight"},
              train_config=recipes.fast_unet_config, onnx_int8="fast_jpeg_unet.int8.onnx",
              mjpeg_variant_of="fast"),
    ModelSpec("paper", "sr", "paper_unet.onnx", "paper_unet.pt",
              "localsr-cam train --model paper",
              "PaperUNet: the paper's vanilla U-Net on the bicubic-resized input",
              build=recipes.build_paper_unet, export=recipes.export_sr,
              train_defaults={"width": 32}, train_config=recipes.paper_unet_config),
):
    register_model(_spec)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``, or a :class:`ConfigError` listing the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: "
                          f"{', '.join(sorted(MODELS))}") from None


def mjpeg_variant(name: str) -> str | None:
    """The registered MJPEG variant of model ``name`` (None: it has none)."""
    return next((spec.name for spec in MODELS.values() if spec.mjpeg_variant_of == name),
                None)


def model_names(kind: str | None = None) -> tuple[str, ...]:
    """Registered model names (of one ``kind`` when given), in registration order."""
    return tuple(name for name, spec in MODELS.items() if kind is None or spec.kind == kind)


def sr_models() -> tuple[str, ...]:
    """The registered super-resolution models."""
    return model_names("sr")


def int8_models() -> tuple[str, ...]:
    """The SR models with an int8 form for the CPU backend."""
    return tuple(name for name in sr_models() if MODELS[name].onnx_int8)


def sr_choices() -> tuple[str, ...]:
    """Choices wherever an upscaler is picked: the SR models, then the plain baselines."""
    return (*sr_models(), *SR_BASELINES)


PEOPLE_SEGMENTERS = ("auto", "people")
"""Segmenter choices that are not one model: ``auto`` (the close-up selfie mask, or
``people`` when the face finder sees a group or someone far away) and ``people`` (the
face finder, then a selfie crop per person)."""


def segmenter_choices() -> tuple[str, ...]:
    """Choices wherever a segmenter is picked: ``auto``, ``people``, then the registered
    segmenters."""
    return (*PEOPLE_SEGMENTERS, *model_names("segment"))


def trainable_models() -> tuple[str, ...]:
    """The models ``localsr-cam train`` can train."""
    return tuple(name for name, spec in MODELS.items() if spec.trainable)


def exportable_models() -> tuple[str, ...]:
    """The models whose ONNX can be re-exported from their trained weights."""
    return tuple(name for name, spec in MODELS.items() if spec.export is not None)
