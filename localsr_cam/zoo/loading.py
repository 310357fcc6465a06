"""Trained models as torch modules, from the registry entry and the shipped files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from localsr_cam.errors import ConfigError, ModelError
from localsr_cam.zoo.artifacts import artifact_path, model_config
from localsr_cam.zoo.recipes import read_state_dict
from localsr_cam.zoo.registry import model_spec

if TYPE_CHECKING:
    from torch import nn


def build_model(name: str, **config: Any) -> nn.Module:
    """A fresh, randomly initialised network for trainable model ``name``.

    ``config`` holds the constructor arguments (as in a manifest entry's ``config``);
    an unknown model or argument is a :class:`ConfigError`.
    """
    spec = model_spec(name)
    if spec.build is None:
        raise ConfigError(f"model {name!r} cannot be built from scratch (it is not trained "
                          f"here); run `{spec.build_command}`")
    return spec.build(**config)


def load_model(name: str, weights: Path | None = None) -> nn.Module:
    """The trained model ``name`` in eval mode, float32 on the CPU.

    The config comes from the model's manifest entry (defaults when it has none); the
    weights from ``weights`` or the shipped file in the engines folder. Missing, unsafe
    or mismatched files raise :class:`ModelError` naming the file and the command that
    rebuilds it.
    """
    spec = model_spec(name)
    config = model_config(name)
    path = Path(weights) if weights is not None else artifact_path(name, "weights")
    if spec.load is not None:
        return spec.load(name, path, config).eval()
    if spec.build is None:
        raise ConfigError(f"model {name!r} has no PyTorch module for the torch/cuda backends")
    model = spec.build(**config)
    state = read_state_dict(path, spec.build_command)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{path} does not match model {name!r} config {config} ({first}); "
                         f"rebuild it with `{spec.build_command}`") from None
    return model.eval()
