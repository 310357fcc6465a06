"""The paper's segmenter: torchvision Mask R-CNN (ResNet-50 FPN v2) → one person mask.

Every instance labelled *person* (COCO label 1) that scores at least
``score_threshold`` contributes its soft mask; the instances are merged by a pixel-wise
maximum into one N×1×H×W float32 probability map, the same contract as the selfie
segmenter.

Weights are never downloaded here. They come from torchvision's cache
(``torch.hub.get_dir()/checkpoints/``, where ``torchvision`` puts them on a machine with
internet) or from an explicit path, and are read with ``torch.load(weights_only=True)``,
which refuses pickles that carry code.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from localsr_cam.errors import BackendUnavailableError, ConfigError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

COCO_PERSON = 1
#: File name torchvision gives the COCO weights of ``maskrcnn_resnet50_fpn_v2``
#: (``MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1``).
WEIGHTS_FILE = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
HOW_TO_GET_WEIGHTS = (
    "on a machine with internet run `python -c \"import torchvision; torchvision.models."
    "detection.maskrcnn_resnet50_fpn_v2(weights='DEFAULT')\"` and copy "
    f"~/.cache/torch/hub/checkpoints/{WEIGHTS_FILE} to the same place here, "
    "or pass --weights PATH"
)


def cached_weights_path() -> Path:
    """Where torchvision keeps the COCO weights (the file may not exist)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_weights(path: Path) -> dict[str, Any]:
    """The state dict at ``path``, read with ``weights_only=True`` onto the CPU.

    Accepts a bare state dict or one wrapped under ``"model"``/``"state_dict"``.
    Raises :class:`ModelError` for a missing or corrupt file and refuses (same error)
    a pickle that would import or call anything but tensors and containers.
    """
    import torch

    if not path.is_file():
        raise ModelError(f"Mask R-CNN weights {path} do not exist; {HOW_TO_GET_WEIGHTS}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"refusing to load {path}: it is not a plain weights file "
                         f"({_first_line(exc)})") from exc
    except Exception as exc:  # truncated zip, not a torch file, …
        raise ModelError(f"cannot read Mask R-CNN weights {path} ({_first_line(exc)})") from exc
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def merge_person_masks(detection: dict[str, torch.Tensor], score_threshold: float,
                       height: int, width: int) -> torch.Tensor:
    """One image's detections → 1×H×W float32 person probability (max over instances).

    ``detection`` is torchvision's per-image output: ``masks`` K×1×H×W float in [0,1],
    ``labels`` K int64, ``scores`` K float. No qualifying instance gives zeros.
    """
    import torch

    keep = (detection["labels"] == COCO_PERSON) & (detection["scores"] >= score_threshold)
    masks = detection["masks"][keep]
    if masks.shape[0] == 0:
        return torch.zeros(1, height, width, dtype=torch.float32,
                           device=detection["masks"].device)
    return masks.amax(dim=0).to(torch.float32).clamp_(0.0, 1.0)


class MaskRCNNSegmenter:
    """Person segmentation with Mask R-CNN, called like the other segmenters.

    ``weights``: a state dict file; ``None`` looks in torchvision's cache.
    ``random_weights``: skip loading (for tests only; the masks are meaningless).
    ``min_size``/``max_size``: torchvision's internal resize; ``proposals``: region
    proposals kept per image (each costs a pass of the box head); ``max_detections``:
    the most instances kept per image (each costs a pass of the mask head). The defaults
    are torchvision's; lower values trade recall for speed.
    Boxes scoring below ``score_threshold`` are dropped inside torchvision, before their
    masks are computed.
    The constructor only stores settings; :meth:`open` builds the network and loads
    the weights, :meth:`close` drops them (safe to call twice).
    """

    def __init__(self, weights: Path | None = None, score_threshold: float = 0.5,
                 device: str = "cpu", random_weights: bool = False,
                 min_size: int = 800, max_size: int = 1333, proposals: int = 1000,
                 max_detections: int = 100) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f"score threshold must be in [0, 1], got {score_threshold}")
        if random_weights and weights is not None:
            raise ConfigError("give Mask R-CNN either a weights file or random weights")
        self.weights = weights
        self.score_threshold = score_threshold
        self.device = device
        self.random_weights = random_weights
        self.min_size = min_size
        self.max_size = max_size
        self.proposals = proposals
        self.max_detections = max_detections
        self._model: nn.Module | None = None

    def open(self) -> MaskRCNNSegmenter:
        """Build the network on ``device`` with its weights; returns ``self``."""
        if self._model is not None:
            return self
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"Mask R-CNN on {self.device}: no CUDA device")
        state = None
        if not self.random_weights:
            state = load_weights(self.weights or cached_weights_path())
        model = maskrcnn_resnet50_fpn_v2(
            weights=None, weights_backbone=None, min_size=self.min_size,
            max_size=self.max_size, box_score_thresh=self.score_threshold,
            rpn_pre_nms_top_n_test=self.proposals, rpn_post_nms_top_n_test=self.proposals,
            box_detections_per_img=self.max_detections)
        if state is None:
            log.warning("Mask R-CNN runs with RANDOM weights: its masks mean nothing")
        else:
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ModelError(f"{self.weights or cached_weights_path()} does not fit "
                                 f"maskrcnn_resnet50_fpn_v2 ({_first_line(exc)})") from exc
        self._model = model.to(self.device).eval()
        return self

    def close(self) -> None:
        """Drop the network (and its device memory)."""
        self._model = None

    def __enter__(self) -> MaskRCNNSegmenter:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` N×3×H×W float RGB in [0,1] (any device) → N×1×H×W float32 in [0,1]
        on ``device``, a new tensor owned by the caller."""
        import torch

        if self._model is None:
            raise RuntimeError("MaskRCNNSegmenter.open() was not called")
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected N×3×H×W, got {tuple(image.shape)}")
        height, width = int(image.shape[2]), int(image.shape[3])
        batch = image.to(self.device, torch.float32)
        with torch.inference_mode():
            detections = self._model(list(batch))
        masks = [merge_person_masks(d, self.score_threshold, height, width)
                 for d in detections]
        return torch.stack(masks)


class MaskRCNNEngine:
    """:class:`MaskRCNNSegmenter` behind the :class:`~localsr_cam.runtime.base.Engine`
    interface: ``{"image": N×3×H×W}`` → ``{"mask": N×1×H×W}`` (float32, on ``device``,
    owned by the caller). Runs in PyTorch; ``backend`` is ``"cuda"`` or ``"torch"``.

    ``threads`` sets PyTorch's intra-op threads when running on the CPU (process-wide);
    ``settings`` go to :class:`MaskRCNNSegmenter` (``score_threshold``,
    ``random_weights``, ``min_size``, ``max_size``, ``proposals``, ``max_detections``).
    """

    name = "maskrcnn"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 threads: int = 2, **settings: Any) -> None:
        import torch

        self.device = torch.device(device)
        self.backend = "cuda" if self.device.type == "cuda" else "torch"  # runs in PyTorch
        self.threads = threads
        self._segmenter = MaskRCNNSegmenter(
            Path(weights) if weights is not None else None, device=device, **settings)

    def open(self) -> MaskRCNNEngine:
        from localsr_cam.runtime import settings

        if self.device.type == "cpu":
            settings.set_threads(self.threads)
        self._segmenter.open()
        return self

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"mask": self._segmenter(inputs["image"])}

    def close(self) -> None:
        self._segmenter.close()
