"""How each shipped model is built, loaded from its files and exported to ONNX.

The registry's entries point at these functions. Each takes what it needs as arguments
(a weights path, a config from the manifest) and knows no registry, manifest or CLI;
torch and the model modules are imported inside, so the registry stays cheap to import.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn


def safe_torch_load(path: Path, rebuild: str) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a ModelError
    naming ``path`` and the ``rebuild`` command."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path} is missing; run `{rebuild}`") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
            AttributeError, ImportError, IndexError, TypeError, KeyError) as exc:
        raise ModelError(f"{path} cannot be loaded safely ({load_problem(path, exc)}); "
                         f"rebuild it with `{rebuild}`") from None


TORCH_FILE_STARTS = (b"PK", b"\x80")
"""How a file ``torch.save`` wrote begins: a zip archive, or (the legacy format) a pickle."""


def load_problem(path: Path, exc: BaseException) -> str:
    """What is wrong with a file ``torch.load`` refused, in words a user can act on:
    empty, not a PyTorch file at all, objects besides tensors, or else the first line
    of torch's own reason (a damaged archive); torch's bare ``KeyError(101)`` for a
    text file said nothing."""
    try:
        with path.open("rb") as handle:
            head = handle.read(2)
    except OSError as err:
        return f"it cannot be read: {err.strerror or err}"
    if not head:
        return "the file is empty"
    if not head.startswith(TORCH_FILE_STARTS):
        return "not a PyTorch weights file"
    text = str(exc).strip()
    if "Weights only load failed" in text:
        return "it holds Python objects besides tensors, which are not loaded: that could run code"
    reason = text.splitlines()[0] if text else type(exc).__name__
    return f"damaged or cut short: {reason[:120]}"


def read_state_dict(path: Path, rebuild: str) -> dict[str, torch.Tensor]:
    """Load a plain ``{name: tensor}`` state dict from ``path`` without running code.

    Anything else (pickled objects, a training checkpoint, garbage) is refused with a
    :class:`ModelError` naming ``path`` and the ``rebuild`` command.
    """
    import torch

    obj = safe_torch_load(path, rebuild)
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelError(f"{path} is not a plain state dict of tensors; "
                         f"rebuild it with `{rebuild}`")
    return obj


def _construct(cls: type[nn.Module], name: str, config: Mapping[str, Any]) -> nn.Module:
    try:
        return cls(**config)
    except TypeError as exc:
        raise ConfigError(f"bad config for model {name!r}: {exc}") from None


def build_fast_unet(**config: Any) -> nn.Module:
    """A fresh, randomly initialised :class:`~localsr_cam.models.unet.FastUNet`."""
    from localsr_cam.models.unet import FastUNet

    return _construct(FastUNet, "fast", config)


def build_paper_unet(**config: Any) -> nn.Module:
    """A fresh, randomly initialised :class:`~localsr_cam.models.unet.PaperUNet`."""
    from localsr_cam.models.unet import PaperUNet

    return _construct(PaperUNet, "paper", config)


def _with_levels(config: dict[str, Any], levels: int, chroma: bool) -> dict[str, Any]:
    if levels:
        config["levels"] = levels
    if chroma:
        config["chroma"] = True
    return config


def fast_unet_config(width: int, depth: int, levels: int = 0, chroma: bool = False,
                     base: str = "bilinear", backproject: bool = False, **_: Any
                     ) -> dict[str, Any]:
    """FastUNet's constructor arguments from the training flags it uses (``levels`` K > 0:
    degradation-aware, FiLM-conditioned on K levels; ``chroma``: JPEG chroma smoothing
    of the input, see :mod:`localsr_cam.models.chroma`; ``base``: the upscale the
    residual is added to, recorded only when not the default bilinear;
    ``backproject``: the closing back-projection step, recorded only when on)."""
    config = _with_levels({"width": width, "depth": depth}, levels, chroma)
    if base != "bilinear":
        config["base"] = base
    if backproject:
        config["backproject"] = True
    return config


def paper_unet_config(width: int, dropout: float, residual: bool, levels: int = 0,
                      chroma: bool = False, **_: Any) -> dict[str, Any]:
    """PaperUNet's constructor arguments from the training flags it uses (``levels`` and
    ``chroma`` as for :func:`fast_unet_config`)."""
    return _with_levels({"width": width, "dropout": dropout, "residual": residual},
                        levels, chroma)


def load_selfie(name: str, weights: Path, config: Mapping[str, Any]) -> nn.Module:
    """The selfie segmenter variant ``name`` from the state dict ``models fetch`` wrote."""
    from localsr_cam.models.selfie import load_state_dict

    return load_state_dict(weights, name)


def load_face(name: str, weights: Path, config: Mapping[str, Any]) -> nn.Module:
    """The full-range face detector from the state dict ``models fetch`` wrote."""
    from localsr_cam.models.face_detector import load_state_dict

    return load_state_dict(weights)


def export_sr(module: nn.Module, path: Path) -> None:
    """Write an SR module's ONNX (dynamic height and width) to ``path``."""
    from localsr_cam.zoo.export import export_sr_onnx

    export_sr_onnx(module, path)
