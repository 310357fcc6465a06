"""The camera degradation model: an HR scene → the LR frame a webcam delivers.

One model, used by ``train`` (random samples) and ``eval`` (named suites), so that what
the U-Nets learn is what they are scored on. Every sample returns the LR image AND the
true parameters that made it (:class:`DegradeParams`), drawn from a seeded
``numpy.random.Generator``: the same seed gives the same pair, bit for bit.

The steps, in the order a camera applies them (HR pixels are the scene, LR pixels the
sensor; images are ``uint8 H×W×3``, RGB unless ``bgr=True``):

1. exposure / white balance (p 0.3): a gain 0.85–1.15 and per-channel gains 0.94–1.06,
   applied to the *scene*, so the HR target changes too. It is augmentation: it widens
   the range of brightness and colour the net sees and sets the signal level of the
   Poisson noise; no net could undo an unknown exposure, so the target follows it.
2. optical blur at HR size (p 0.5): isotropic Gaussian σ 0.2–1.2 px, one in three
   anisotropic (σ₁, σ₂ each 0.2–1.5, any angle); a little motion blur (p 0.1, a line of
   2–4 px). A fixed-focus webcam lens is mildly soft; Real-ESRGAN's σ up to 3 and
   BSRGAN's generalized kernels model much worse optics than a webcam has.
3. the 2× downscale (always): area 0.4, bilinear 0.3, bicubic 0.3 (cv2, so bilinear and
   bicubic alias as a sensor's binning and a cheap ISP scaler do); p 0.2 in two steps
   (first to 0.55–0.8 of the HR size, then to half).
4. Poisson-Gaussian sensor noise at LR size (p 0.5): std σ at mid-grey, σ 1–8/255
   (log-uniform), a low-light tail (p 0.15 of the noisy samples) at 8–15/255. Its
   variance is ``σ_read² + σ_shot²·x/0.5`` (x the signal in [0,1]) with a read-noise share
   0.2–0.6. Mostly luma: chroma noise is 0.15–0.5 of it (an ISP denoises chroma hard).
   p 0.25 spatially correlated (a Gaussian σ 0.5–1 on the noise field, as demosaicking
   does), renormalized to the same std. A webcam in an office shows σ ≈ 1–5/255; in a dim
   room 8–15. BSRGAN/Real-ESRGAN go to 25–30/255, more than a webcam ISP passes on.
5. ISP sharpening (p 0.3): unsharp mask, amount 0.2–0.8, Gaussian σ 0.7–1.5 LR px, on
   the noisy image (a camera sharpens its own noise).
6. chroma subsampling: the JPEG step does it (4:2:0, p 0.2 4:2:2); without JPEG, p 0.5
   of 4:2:2 (YUYV) or 4:2:0 (NV12): chroma averaged over 2×1 / 2×2 and upsampled
   bilinearly, luma untouched (BT.601 YCrCb, as OpenCV and the JPEG codec use).
7. MJPEG (p 0.5): ``cv2.imencode`` quality 50–95 (webcam MJPEG streams sit at 70–90;
   Real-ESRGAN's 30 is a re-shared web image, not a camera).

A share of samples (:data:`CLEAN_SHARE`, 0.2; ``train --clean-share`` changes it for
training only, never for a suite) is *clean*: only step 3. The net must keep real texture on
those, which is why the degradation levels are estimated and given to it. For training,
``train --single-share`` also makes a share of the degraded samples one fault alone
(MJPEG, sensor noise or lens blur; :func:`sample_params`), ``train --sharpen-share``
gives a share of the clean ones step 5 (a camera that sharpens a clean picture, which
the estimator cannot tell from an unsharpened one), and ``train --jpeg-share`` gives a
share of the draws without step 7 that step (the MJPEG variant ``fast-jpeg`` trains on
MJPEG frames only), and ``train --light-jpeg-share`` draws that share of step 7's
qualities from the light end, :data:`LIGHT_JPEG_QUALITY` (the qualities webcams send
most); the suites never do.

Named suites (:data:`SUITES`) fix the parameters for evaluation: ``area`` and ``bicubic``
(a clean downscale), ``webcam`` (the random model, seeded per image), ``lossy`` (area +
JPEG q 75 4:2:0), ``mjpeg`` (area + JPEG q 90 4:2:2: a webcam's MJPEG stream in good
light, lighter than ``lossy``), ``lowlight`` (area + noise σ 10/255, 1/3 read noise,
chroma 0.3, then JPEG q 80 4:2:0), and one camera fault alone each, the three a webcam
is judged by besides MJPEG: ``soft`` (a soft lens: Gaussian blur σ 1 HR px, then area),
``noisy`` (a raw YUYV webcam in an office: area + noise σ 4/255, 0.4 read noise, chroma
0.3, chroma 4:2:2, no JPEG) and ``sharpened`` (a camera ISP's unsharp mask: area, then
amount 0.5, σ 1 LR px); ``all`` is every one of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from localsr_cam.capture.images import crop_even
from localsr_cam.errors import ConfigError, SourceError

CLEAN_SHARE = 0.2
"""The camera model's share of clean samples (only the downscale)."""
RESIZE_FLAGS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR,
                "bicubic": cv2.INTER_CUBIC}
JPEG_SAMPLING = {"420": 0x221111, "422": 0x211111, "444": 0x111111}
"""cv2.IMWRITE_JPEG_SAMPLING_FACTOR values for each chroma subsampling."""


@dataclass(frozen=True)
class DegradeParams:
    """The true parameters of one degradation (what :func:`apply` does to an image).

    Lengths are in pixels: blur at HR size, sharpening and noise correlation at LR size.
    Noise std ``noise_sigma`` is in 1/255 units at mid-grey. ``jpeg_quality`` 0 means no
    JPEG; ``chroma`` is the subsampling of the final image ("444" = none).
    """

    resize: tuple[str, ...] = ("area",)
    resize_mid: float = 0.0  # first-step scale of a two-step resize (0: one step)
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    blur_angle: float = 0.0  # degrees
    motion_len: float = 0.0
    motion_angle: float = 0.0
    sharpen_amount: float = 0.0
    sharpen_sigma: float = 1.0
    noise_sigma: float = 0.0
    noise_read_share: float = 0.5
    noise_chroma: float = 0.3
    noise_corr: float = 0.0
    noise_seed: int = 0
    chroma: str = "444"
    jpeg_quality: int = 0
    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # R, G, B gains
    clean: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def true_levels(self) -> np.ndarray:
        """float32 (3,): noise σ/255, JPEG strength (1 − q/100, 0 without JPEG) and the
        largest optical blur σ in HR px: what the estimator tries to tell."""
        jpeg = 0.0 if self.jpeg_quality <= 0 else 1.0 - self.jpeg_quality / 100.0
        return np.array([self.noise_sigma, jpeg, max(self.blur_sigma)], np.float32)


@dataclass(frozen=True)
class Sample:
    """One degraded pair: ``hr`` (the target, uint8 2h×2w×3, after exposure/WB jitter),
    ``lr`` (uint8 h×w×3) and the true ``params``. Both arrays are new and owned here."""

    hr: np.ndarray
    lr: np.ndarray
    params: DegradeParams = field(default_factory=DegradeParams)


# --------------------------------------------------------------------------- sampling


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_params(rng: np.random.Generator, clean_share: float = CLEAN_SHARE,
                  single_share: float = 0.0, sharpen_share: float = 0.0,
                  jpeg_share: float = 0.0, light_jpeg_share: float = 0.0) -> DegradeParams:
    """Draw one webcam degradation (the ranges of the module docstring); a share
    ``clean_share`` of the draws is a clean downscale (only the kernel drawn), a share
    ``sharpen_share`` of those is then given the ISP's unsharp mask (step 5's ranges),
    and a share ``single_share`` of the others is one camera fault alone
    (:func:`_single_fault`). Last, a share ``jpeg_share`` of the draws that have no
    MJPEG get it (step 7's ranges; with 1 every draw is an MJPEG frame and the clean
    ones become MJPEG alone: what the MJPEG variant of a net learns from). A share
    ``light_jpeg_share`` of every MJPEG draw takes its quality from
    :data:`LIGHT_JPEG_QUALITY`. With ``single_share``, ``sharpen_share``, ``jpeg_share``
    and ``light_jpeg_share`` 0 it draws exactly what it always drew (the suites'
    ``webcam``)."""
    params = _draw_params(rng, clean_share, single_share, sharpen_share, light_jpeg_share)
    if params.jpeg_quality == 0 and _chance(rng, jpeg_share):
        quality, chroma = _draw_jpeg(rng, light_jpeg_share)
        params = replace(params, jpeg_quality=quality, chroma=chroma, clean=False)
    return params


def _chance(rng: np.random.Generator, share: float) -> bool:
    """True with probability ``share``; draws nothing when it is 0 or 1."""
    return share >= 1.0 or (share > 0.0 and bool(rng.random() < share))


def _draw_params(rng: np.random.Generator, clean_share: float, single_share: float,
                 sharpen_share: float, light_jpeg_share: float) -> DegradeParams:
    """:func:`sample_params` before its MJPEG share."""
    resize_choice = ("area", "bilinear", "bicubic")
    first = str(rng.choice(resize_choice, p=(0.4, 0.3, 0.3)))
    clean = rng.random() < clean_share
    if clean:
        if sharpen_share > 0 and rng.random() < sharpen_share:
            amount, sigma = _draw_sharpen(rng)
            return DegradeParams(resize=(first,), sharpen_amount=amount, sharpen_sigma=sigma)
        return DegradeParams(resize=(first,), clean=True)
    if single_share > 0 and rng.random() < single_share:
        return _single_fault(rng, first, light_jpeg_share)
    two_step = rng.random() < 0.2
    resize: tuple[str, ...] = (first,)
    mid = 0.0
    if two_step:
        resize = (first, str(rng.choice(resize_choice, p=(0.4, 0.3, 0.3))))
        mid = float(rng.uniform(0.55, 0.8))
    blur, angle = _draw_blur(rng) if rng.random() < 0.5 else ((0.0, 0.0), 0.0)
    motion_len, motion_angle = 0.0, 0.0
    if rng.random() < 0.1:
        motion_len, motion_angle = float(rng.uniform(2, 4)), float(rng.uniform(0, 180))
    noise, read, chroma_noise, corr = 0.0, 0.5, 0.3, 0.0
    if rng.random() < 0.5:
        noise, read, chroma_noise, corr = _draw_noise(rng)
    sharpen, sharpen_sigma = 0.0, 1.0
    if rng.random() < 0.3:
        sharpen, sharpen_sigma = _draw_sharpen(rng)
    quality, chroma = 0, "444"
    if rng.random() < 0.5:
        quality, chroma = _draw_jpeg(rng, light_jpeg_share)
    elif rng.random() < 0.5:
        chroma = "422" if rng.random() < 0.5 else "420"
    exposure, wb = 1.0, (1.0, 1.0, 1.0)
    if rng.random() < 0.3:
        exposure = float(rng.uniform(0.85, 1.15))
        wb = (float(rng.uniform(0.94, 1.06)), 1.0, float(rng.uniform(0.94, 1.06)))
    return DegradeParams(
        resize=resize, resize_mid=mid, blur_sigma=blur, blur_angle=angle,
        motion_len=motion_len, motion_angle=motion_angle, sharpen_amount=sharpen,
        sharpen_sigma=sharpen_sigma, noise_sigma=noise, noise_read_share=read,
        noise_chroma=chroma_noise, noise_corr=corr,
        noise_seed=int(rng.integers(0, 2**31 - 1)), chroma=chroma, jpeg_quality=quality,
        exposure=exposure, white_balance=wb)


SINGLE_FAULTS = ("jpeg", "noise", "blur")
"""The camera faults a single-fault draw picks from, evenly."""


def _single_fault(rng: np.random.Generator, resize: str,
                  light_jpeg_share: float = 0.0) -> DegradeParams:
    """The ``resize`` downscale and one fault alone, with the ranges of the full model:
    MJPEG (no sensor noise: a camera in good light), sensor noise (raw YUYV/NV12, chroma
    subsampled as such a camera delivers), or lens blur. In the full model the faults
    are drawn independently, so each comes alone in only ~1 % of the training samples,
    and a net told "JPEG" learned to smooth as for the noisy frames that come with it:
    on JPEG-only input (the ``lossy`` suite) it did 0.07 dB better on its own training
    photos when told half the JPEG level it read."""
    fault = SINGLE_FAULTS[int(rng.integers(len(SINGLE_FAULTS)))]
    if fault == "jpeg":
        quality, chroma = _draw_jpeg(rng, light_jpeg_share)
        return DegradeParams(resize=(resize,), jpeg_quality=quality, chroma=chroma)
    if fault == "noise":
        noise, read, chroma_noise, corr = _draw_noise(rng)
        return DegradeParams(resize=(resize,), noise_sigma=noise, noise_read_share=read,
                             noise_chroma=chroma_noise, noise_corr=corr,
                             noise_seed=int(rng.integers(0, 2**31 - 1)),
                             chroma="422" if rng.random() < 0.5 else "420")
    blur, angle = _draw_blur(rng)
    return DegradeParams(resize=(resize,), blur_sigma=blur, blur_angle=angle)


def _draw_sharpen(rng: np.random.Generator) -> tuple[float, float]:
    """ISP sharpening: the unsharp mask's amount (0.2–0.8) and Gaussian σ (0.7–1.5 LR
    px)."""
    return float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.7, 1.5))


def _draw_blur(rng: np.random.Generator) -> tuple[tuple[float, float], float]:
    """Lens blur: (σ₁, σ₂) px at HR size and the angle (degrees); one in three
    anisotropic."""
    if rng.random() < 1 / 3:
        return (float(rng.uniform(0.2, 1.5)), float(rng.uniform(0.2, 1.5))), \
            float(rng.uniform(0, 180))
    s = float(rng.uniform(0.2, 1.2))
    return (s, s), 0.0


def _draw_noise(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Sensor noise: σ (/255, log-uniform 1–8, p 0.15 low light 8–15), the read-noise
    share, the chroma share, the correlation σ (p 0.25, else 0)."""
    noise = (float(rng.uniform(8, 15)) if rng.random() < 0.15
             else _log_uniform(rng, 1.0, 8.0))
    read = float(rng.uniform(0.2, 0.6))
    chroma_noise = float(rng.uniform(0.15, 0.5))
    corr = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.25 else 0.0
    return noise, read, chroma_noise, corr


LIGHT_JPEG_QUALITY = (85, 95)
"""The MJPEG qualities ``light_jpeg_share`` draws from (inclusive): what webcams send at
720p most; both FastUNets gained least there (BENCHMARKS.md, "Session 18")."""


def _draw_jpeg(rng: np.random.Generator, light_share: float = 0.0) -> tuple[int, str]:
    """MJPEG: the quality (50–95; with probability ``light_share`` from
    :data:`LIGHT_JPEG_QUALITY`) and its chroma subsampling (p 0.2 4:2:2, else 4:2:0)."""
    light = light_share > 0 and rng.random() < light_share
    low, high = LIGHT_JPEG_QUALITY if light else (50, 95)
    quality = int(rng.integers(low, high + 1))
    return quality, "422" if rng.random() < 0.2 else "420"


def _suite_webcam(rng: np.random.Generator) -> DegradeParams:
    return sample_params(rng)


SUITES: dict[str, Callable[[np.random.Generator], DegradeParams]] = {
    "area": lambda rng: DegradeParams(resize=("area",), clean=True),
    "bicubic": lambda rng: DegradeParams(resize=("bicubic",), clean=True),
    "webcam": _suite_webcam,
    "lossy": lambda rng: DegradeParams(resize=("area",), jpeg_quality=75, chroma="420"),
    "mjpeg": lambda rng: DegradeParams(resize=("area",), jpeg_quality=90, chroma="422"),
    "lowlight": lambda rng: DegradeParams(
        resize=("area",), noise_sigma=10.0, noise_read_share=1 / 3, noise_chroma=0.3,
        noise_seed=int(rng.integers(0, 2**31 - 1)), jpeg_quality=80, chroma="420"),
    "soft": lambda rng: DegradeParams(resize=("area",), blur_sigma=(1.0, 1.0)),
    "noisy": lambda rng: DegradeParams(
        resize=("area",), noise_sigma=4.0, noise_read_share=0.4, noise_chroma=0.3,
        noise_seed=int(rng.integers(0, 2**31 - 1)), chroma="422"),
    "sharpened": lambda rng: DegradeParams(resize=("area",), sharpen_amount=0.5,
                                           sharpen_sigma=1.0),
}
"""Evaluation suites: name → parameters drawn from a per-image generator."""

SUITE_NAMES = (*SUITES, "all")


def suite_names(name: str) -> tuple[str, ...]:
    """The suites ``name`` stands for (``all`` → every suite); unknown → ConfigError."""
    if name == "all":
        return tuple(SUITES)
    if name not in SUITES:
        raise ConfigError(f"unknown degradation {name!r}; choose one of: "
                          f"{', '.join(SUITE_NAMES)}")
    return (name,)


def suite_params(name: str, seed: int) -> DegradeParams:
    """The parameters suite ``name`` uses for the image with this ``seed``."""
    suite_names(name)
    return SUITES[name](np.random.default_rng(seed))


# --------------------------------------------------------------------------- the steps


def gaussian_kernel(sigma_x: float, sigma_y: float, angle_deg: float) -> np.ndarray:
    """A normalized float32 2-D Gaussian kernel, axes rotated by ``angle_deg``."""
    s = max(sigma_x, sigma_y)
    radius = max(1, math.ceil(3 * s))
    y, x = np.mgrid[-radius: radius + 1, -radius: radius + 1].astype(np.float64)
    t = math.radians(angle_deg)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    k = np.exp(-0.5 * ((u / max(sigma_x, 1e-3)) ** 2 + (v / max(sigma_y, 1e-3)) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalized float32 line kernel of ``length`` px at ``angle_deg``."""
    size = math.ceil(length) | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    t = math.radians(angle_deg)
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(length * 4))):
        k[round(c + s * math.sin(t)), round(c + s * math.cos(t))] += 1.0
    return k / k.sum()


def blur(img: np.ndarray, params: DegradeParams) -> np.ndarray:
    """Optical blur (Gaussian, then motion) of a float32 image."""
    sx, sy = params.blur_sigma
    if max(sx, sy) > 0:
        if abs(sx - sy) < 1e-6:
            img = cv2.GaussianBlur(img, (0, 0), sx, borderType=cv2.BORDER_REFLECT)
        else:
            img = cv2.filter2D(img, -1, gaussian_kernel(sx, sy, params.blur_angle),
                               borderType=cv2.BORDER_REFLECT)
    if params.motion_len > 0:
        img = cv2.filter2D(img, -1, motion_kernel(params.motion_len, params.motion_angle),
                           borderType=cv2.BORDER_REFLECT)
    return img


def downscale(img: np.ndarray, size: tuple[int, int], params: DegradeParams) -> np.ndarray:
    """Resize to ``size`` (w, h) with the method(s) of ``params.resize``."""
    if len(params.resize) == 2 and params.resize_mid > 0:
        h, w = img.shape[:2]
        mid = (max(size[0], round(w * params.resize_mid)),
               max(size[1], round(h * params.resize_mid)))
        img = cv2.resize(img, mid, interpolation=RESIZE_FLAGS[params.resize[0]])
        return cv2.resize(img, size, interpolation=RESIZE_FLAGS[params.resize[1]])
    return cv2.resize(img, size, interpolation=RESIZE_FLAGS[params.resize[0]])


def _ycc_to_rgb_matrix() -> np.ndarray:
    # BT.601 full range: R = Y + 1.402 Cr, G = Y - 0.344 Cb - 0.714 Cr, B = Y + 1.772 Cb
    return np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]],
                    np.float32)  # rows R, G, B; columns Y, Cb, Cr


def sensor_noise(img: np.ndarray, params: DegradeParams, bgr: bool) -> np.ndarray:
    """Add Poisson-Gaussian noise, mostly luma, to a float32 image in [0,255].

    Luma std at signal x ∈ [0,1]: ``σ·sqrt(r + (1 − r)·x/0.5)`` (r the read-noise share),
    so it is σ at mid-grey; chroma (Cb, Cr) gets ``noise_chroma`` times that.
    """
    if params.noise_sigma <= 0:
        return img
    rng = np.random.default_rng(params.noise_seed)
    h, w = img.shape[:2]
    field: np.ndarray = rng.standard_normal((h, w, 3), dtype=np.float32)
    if params.noise_corr > 0:
        field = cv2.GaussianBlur(field, (0, 0), params.noise_corr)
        field = field / max(float(field.std()), 1e-6)
    signal = img.mean(axis=2, keepdims=True) / 255.0
    r = params.noise_read_share
    std = params.noise_sigma * np.sqrt(r + (1.0 - r) * np.clip(signal, 0, 1) / 0.5)
    ycc = field * std
    ycc[:, :, 1:] *= params.noise_chroma
    rgb_noise = ycc @ _ycc_to_rgb_matrix().T
    if bgr:
        rgb_noise = rgb_noise[:, :, ::-1]
    return img + rgb_noise


def sharpen(img: np.ndarray, params: DegradeParams) -> np.ndarray:
    """ISP unsharp mask: ``x + a·(x − gauss(x))`` on a float32 image."""
    if params.sharpen_amount <= 0:
        return img
    soft = cv2.GaussianBlur(img, (0, 0), params.sharpen_sigma, borderType=cv2.BORDER_REFLECT)
    return img + params.sharpen_amount * (img - soft)


def subsample_chroma(img: np.ndarray, mode: str, bgr: bool) -> np.ndarray:
    """uint8 image with its chroma at 4:2:2 (2×1) or 4:2:0 (2×2) resolution, luma kept."""
    if mode == "444":
        return img
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb if bgr else cv2.COLOR_RGB2YCrCb)
    h, w = img.shape[:2]
    fy = 2 if mode == "420" else 1
    small = (max(1, (w + 1) // 2), max(1, (h + fy - 1) // fy))
    chroma = ycc[:, :, 1:]
    # average 2×fy blocks (edge pixels repeat for odd sizes), as a camera's YUV packs it
    padded = cv2.copyMakeBorder(chroma, 0, small[1] * fy - h, 0, small[0] * 2 - w,
                                cv2.BORDER_REPLICATE)
    low = cv2.resize(padded, small, interpolation=cv2.INTER_AREA)
    up = cv2.resize(low, (small[0] * 2, small[1] * fy), interpolation=cv2.INTER_LINEAR)
    ycc[:, :, 1:] = up[:h, :w]
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR if bgr else cv2.COLOR_YCrCb2RGB)


def jpeg(img: np.ndarray, quality: int, chroma: str, bgr: bool) -> np.ndarray:
    """Encode and decode a uint8 image as JPEG (``cv2.imencode``) with this chroma
    subsampling; the 8×8 grid starts at the top-left pixel, as in a camera frame."""
    src = img if bgr else img[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(src),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality),
                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, JPEG_SAMPLING[chroma]])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise SourceError("cv2.imencode failed to make a JPEG")
    out: np.ndarray | None = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if out is None:  # pragma: no cover - it decodes what it just encoded
        raise SourceError("cv2.imdecode failed on a JPEG it made")
    return out if bgr else np.ascontiguousarray(out[:, :, ::-1])


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float [0,255] → uint8, rounded and clipped (a new array)."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def apply(hr: np.ndarray, params: DegradeParams, bgr: bool = False) -> Sample:
    """Degrade one HR image with fixed ``params``; deterministic.

    ``hr`` is uint8 H×W×3 (RGB, or BGR with ``bgr=True``), H and W at least 2; it is
    cropped to even size. Returns a :class:`Sample` whose ``hr`` is the (jittered) target
    and ``lr`` the H/2×W/2 input; ``hr`` itself is not modified.
    """
    hr = crop_even(hr)
    if hr.ndim != 3 or hr.shape[2] != 3 or hr.dtype != np.uint8:
        raise SourceError(f"degrade needs a uint8 H×W×3 image, got {hr.dtype} {hr.shape}")
    if hr.shape[0] < 2 or hr.shape[1] < 2:
        raise SourceError(f"image of size {hr.shape[1]}x{hr.shape[0]} is too small to "
                          "downscale 2x")
    if params.exposure != 1.0 or params.white_balance != (1.0, 1.0, 1.0):
        gains = np.array(params.white_balance, np.float32) * params.exposure
        if bgr:
            gains = gains[::-1]
        hr = to_uint8(hr.astype(np.float32) * gains)
    size = (hr.shape[1] // 2, hr.shape[0] // 2)
    if params.clean:
        return Sample(np.array(hr, copy=True),
                      cv2.resize(hr, size, interpolation=RESIZE_FLAGS[params.resize[0]]),
                      params)
    img = blur(hr.astype(np.float32), params)
    img = downscale(img, size, params)
    img = sensor_noise(img, params, bgr)
    img = sharpen(img, params)
    lr = to_uint8(img)
    if params.jpeg_quality > 0:
        lr = jpeg(lr, params.jpeg_quality, params.chroma, bgr)
    else:
        lr = subsample_chroma(lr, params.chroma, bgr)
    return Sample(np.array(hr, copy=True), lr, params)


def degrade(hr: np.ndarray, rng: np.random.Generator, bgr: bool = False,
            clean_share: float = CLEAN_SHARE, single_share: float = 0.0,
            sharpen_share: float = 0.0, jpeg_share: float = 0.0,
            light_jpeg_share: float = 0.0) -> Sample:
    """One random webcam degradation of ``hr`` (see :func:`apply`), drawn from ``rng``,
    clean with probability ``clean_share`` (then sharpened with probability
    ``sharpen_share``), else one fault alone with probability ``single_share``; MJPEG
    added with probability ``jpeg_share`` where it drew none, its quality light with
    probability ``light_jpeg_share`` (:func:`sample_params`)."""
    return apply(hr, sample_params(rng, clean_share, single_share, sharpen_share, jpeg_share,
                                   light_jpeg_share), bgr)


def image_seed(suite: str, hr: np.ndarray) -> int:
    """The seed suite ``suite`` uses for image ``hr`` (uint8 H×W×3, RGB or BGR): a CRC
    of the suite name and a sample of the green channel, so ``train``'s validation and
    ``eval`` draw the same degradation for the same picture, in any folder or order."""
    import zlib

    sample = np.ascontiguousarray(crop_even(hr)[::7, ::7, 1])
    return zlib.crc32(suite.encode() + sample.tobytes())


def degrade_suite(hr: np.ndarray, name: str, seed: int, bgr: bool = False) -> Sample:
    """``hr`` degraded by suite ``name`` (not ``all``) with the per-image ``seed``."""
    return apply(hr, suite_params(name, seed), bgr)


def with_params(params: DegradeParams, **changes: Any) -> DegradeParams:
    """A copy of ``params`` with some fields changed (eval's frames of a still scene,
    tests and tools)."""
    return replace(params, **changes)
