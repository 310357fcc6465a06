"""Can one LR frame tell whether the camera sharpened it? A learned probe (research).

The ISP's unsharp mask is the degradation the U-Nets cannot read (BENCHMARKS.md,
Quality, Sessions 14 and 17): a FastUNet trained on sharpened frames gains about a dB
on them and loses as much on clean ones, so it would pay to route sharpened frames to
such a variant, as MJPEG frames go to ``fast-jpeg`` — if one frame could tell.

This tool trains a small CNN on LR luma crops of the training photos (binary: was the
LR sharpened or not) and reads whole validation frames with it, suite by suite, so
that a routing rule can be scored against ``localsr-cam eval --json`` reports of the
plain net and of a sharpened-trained variant. Nothing here ships; it is the
experiment, kept so that it can be rerun.

    .venv/bin/python tools/sharpness_probe.py train --train-dir ../shared/data/train \\
        --train-dir ../shared/data/people --holdout anne_helene.png,bar55.png \\
        --minutes 25 --out probe.pt
    .venv/bin/python tools/sharpness_probe.py read --weights probe.pt --images VAL/ \\
        --json readings.json
    .venv/bin/python tools/sharpness_probe.py route --readings readings.json \\
        --plain plain.json --variant sharp.json --threshold 1.5

The classes (``draw``): positive = any 2× kernel (area / bilinear / bicubic), lens
blur p 0.3, then the unsharp mask (amount 0.2–0.8, σ 0.7–1.5 LR px); negative = the
same without the mask, lens blur p 0.5. Both: sensor noise p 0.5 (σ 1–8/255, before the
mask, as a camera has it), MJPEG p 0.3 (q 50–95), and p 0.4 of the HR crops sharpened
*before* the downscale (amount 0.3–1.5, σ 0.5–1.5 HR px: a camera JPEG that we
downscale is already sharpened, and must not count as a sharpening camera).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from localsr_cam.capture.images import list_images
from localsr_cam.measure import degrade
from localsr_cam.train.data import read_rgb

PROBE_SUITES = ("area", "soft", "noisy", "bicubic", "sharpened", "webcam", "lossy")


class SharpnessProbe(nn.Module):
    """N×1×H×W float32 luma in [0, 1] → N logits (sharpened > 0): six 3×3 convolutions,
    two of stride 2, on the luma minus its 5×5 local mean, a logit per position averaged
    over the frame (any size)."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for stride in (1, 1, 2, 1, 2):
            layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.Conv2d(width, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, luma: torch.Tensor) -> torch.Tensor:
        detail = luma - nn.functional.avg_pool2d(luma, 5, 1, 2, count_include_pad=False)
        return self.body(detail * 10.0).mean(dim=(1, 2, 3))


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB → float32 H×W BT.601 luma in [0, 1]."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32) / 255.0


def draw(rng: np.random.Generator, sharpened: bool) -> degrade.DegradeParams:
    """One LR degradation of the class (module docstring)."""
    resize = str(rng.choice(["area", "bilinear", "bicubic"], p=[0.4, 0.3, 0.3]))
    params = degrade.DegradeParams(resize=(resize,))
    if rng.random() < (0.3 if sharpened else 0.5):
        sigma = float(rng.uniform(0.3, 1.5))
        params = degrade.with_params(params, blur_sigma=(sigma, sigma))
    if sharpened:  # the camera model's step 5 ranges
        amount, sigma = degrade._draw_sharpen(rng)
        params = degrade.with_params(params, sharpen_amount=amount, sharpen_sigma=sigma)
    if rng.random() < 0.5:
        params = degrade.with_params(
            params, noise_sigma=degrade._log_uniform(rng, 1.0, 8.0),
            noise_read_share=float(rng.uniform(0.2, 0.6)),
            noise_seed=int(rng.integers(1 << 30)))
    if rng.random() < 0.3:
        params = degrade.with_params(params, jpeg_quality=int(rng.integers(50, 96)),
                                     chroma="420")
    return params


def presharpened(rng: np.random.Generator, hr: np.ndarray) -> np.ndarray:
    """``hr`` (uint8 RGB), p 0.4 given an HR-scale unsharp mask first."""
    if rng.random() >= 0.4:
        return hr
    mask = degrade.DegradeParams(sharpen_amount=float(rng.uniform(0.3, 1.5)),
                                 sharpen_sigma=float(rng.uniform(0.5, 1.5)))
    return degrade.to_uint8(degrade.sharpen(hr.astype(np.float32), mask))


def batch(rng: np.random.Generator, photos: list[np.ndarray], count: int, side: int
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` LR luma crops (N×1×side/2×side/2 float32) and their labels (N float32)."""
    crops, labels = [], []
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        y0 = int(rng.integers(0, photo.shape[0] - side + 1)) // 2 * 2
        x0 = int(rng.integers(0, photo.shape[1] - side + 1)) // 2 * 2
        label = bool(rng.random() < 0.5)
        hr = presharpened(rng, photo[y0:y0 + side, x0:x0 + side])
        crops.append(luma(degrade.apply(hr, draw(rng, label)).lr))
        labels.append(float(label))
    return torch.from_numpy(np.stack(crops)[:, None]), torch.tensor(labels)


def train(args: argparse.Namespace) -> None:
    holdout = set(filter(None, args.holdout.split(",")))
    photos = [read_rgb(path) for folder in args.train_dir for path in list_images(folder)
              if path.name not in holdout]
    photos = [p for p in photos if min(p.shape[:2]) >= args.side]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    probe = SharpnessProbe()
    if args.init is not None:
        probe.load_state_dict(torch.load(args.init))
    optimizer = torch.optim.Adam(probe.parameters(), args.lr)
    started, step, hits = time.monotonic(), 0, []
    while time.monotonic() - started < 60.0 * args.minutes:
        crops, labels = batch(rng, photos, args.batch, args.side)
        logits = probe(crops)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        hits.append(float(((logits > 0).float() == labels).float().mean()))
        if step % 200 == 0:
            print(f"step {step}: loss {loss.item():.3f}, accuracy (last 200) "
                  f"{np.mean(hits[-200:]):.3f}, {time.monotonic() - started:.0f} s",
                  flush=True)
    torch.save(probe.state_dict(), args.out)
    print(f"wrote {args.out} after {step} steps")


def read(args: argparse.Namespace) -> None:
    probe = SharpnessProbe()
    probe.load_state_dict(torch.load(args.weights))
    probe.eval()
    readings: dict[str, dict[str, float]] = {}
    for path in list_images(args.images):
        hr = read_rgb(path)
        row = readings.setdefault(path.name, {})
        for suite in PROBE_SUITES:
            lr = degrade.degrade_suite(hr, suite, degrade.image_seed(suite, hr)).lr
            with torch.no_grad():
                row[suite] = float(probe(torch.from_numpy(luma(lr))[None, None])[0])
        print(f"{path.name[:24]:24s} " + " ".join(f"{suite} {row[suite]:+6.2f}"
                                                  for suite in PROBE_SUITES), flush=True)
    args.json.write_text(json.dumps(readings, indent=1) + "\n")


def _full_gains(report: Path) -> dict[str, dict[str, float]]:
    """{suite: {image name: full-frame PSNR gain over bicubic}} of an eval --json report."""
    suites = json.loads(report.read_text())["suites"]
    return {suite: {Path(img["name"]).name: img["methods"]["full"]["psnr"]
                    - img["methods"]["bicubic"]["psnr"] for img in sub["images"]}
            for suite, sub in suites.items()}


def route(args: argparse.Namespace) -> None:
    readings = json.loads(args.readings.read_text())
    plain, variant = _full_gains(args.plain), _full_gains(args.variant)
    routed = {suite: {name: (variant if readings[name].get(suite, -np.inf)
                             >= args.threshold else plain)[suite][name]
                      for name in gains} for suite, gains in plain.items()}
    print("| | " + " | ".join(plain) + " | mean |")
    for label, table in (("plain", plain), ("variant", variant), ("routed", routed)):
        means = [float(np.mean(list(table[s].values()))) for s in plain]
        cells = [f"{m:+.3f} / {min(table[s].values()):+.3f}" for m, s in zip(means, plain,
                                                                             strict=True)]
        print(f"| {label} | " + " | ".join(cells) + f" | {np.mean(means):+.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train", help="train the probe")
    fit.add_argument("--train-dir", type=Path, action="append", required=True)
    fit.add_argument("--holdout", default="", help="file names left out, comma-separated")
    fit.add_argument("--minutes", type=float, default=20.0)
    fit.add_argument("--side", type=int, default=256, help="HR crop side (even)")
    fit.add_argument("--batch", type=int, default=16)
    fit.add_argument("--lr", type=float, default=1e-3)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--threads", type=int, default=1)
    fit.add_argument("--init", type=Path, help="weights to start from")
    fit.add_argument("--out", type=Path, required=True)
    look = commands.add_parser("read", help="read every suite's LR frame of each image")
    look.add_argument("--weights", type=Path, required=True)
    look.add_argument("--images", type=Path, required=True)
    look.add_argument("--json", type=Path, required=True)
    score = commands.add_parser("route", help="score routing on eval --json reports")
    score.add_argument("--readings", type=Path, required=True)
    score.add_argument("--plain", type=Path, required=True)
    score.add_argument("--variant", type=Path, required=True)
    score.add_argument("--threshold", type=float, default=1.5)
    args = parser.parse_args(argv)
    {"train": train, "read": read, "route": route}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
