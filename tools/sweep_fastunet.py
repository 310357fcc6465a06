"""Speed sweep of FastUNet widths/depths on ONNX Runtime CPU.

For each (width, depth) it exports the (untrained) network to ONNX in memory and times
onnxruntime (2 intra-op threads, 1 inter-op thread) on a 320×240 LR crop (the person
box) and a full 640×360 LR frame. Prints a markdown table: params, MACs per LR pixel,
median milliseconds. Optionally also times an int8 static QDQ-quantized copy.

    .venv/bin/python tools/sweep_fastunet.py --widths 16 32 --depths 1 2 3 4
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from localsr_cam.models.unet import FastUNet, count_params, macs_per_lr_pixel
from localsr_cam.zoo.export import export_sr_onnx, ort_session, time_ort

SIZES = ((240, 320), (360, 640))  # LR h, w


def quantize_qdq(src: Path, dst: Path) -> None:
    """Static int8 QDQ quantization of ``src`` calibrated on random smooth images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.items = iter([{"image": rng.random((1, 3, 64, 64), dtype=np.float32)}
                               for _ in range(8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also time int8 QDQ copies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    header = ("| width | depth | params | KMAC/LR px | variant | 320×240 ms min / median "
              "| 640×360 ms min / median |")
    print(header)
    print("|---:|---:|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            for depth in args.depths:
                model = FastUNet(width=width, depth=depth)
                for p in model.parameters():
                    torch.nn.init.normal_(p, std=0.02)
                path = Path(tmp) / f"w{width}d{depth}.onnx"
                export_sr_onnx(model, path)
                variants = [("fp32", path)]
                if args.int8:
                    qpath = Path(tmp) / f"w{width}d{depth}_int8.onnx"
                    quantize_qdq(path, qpath)
                    variants.append(("int8 QDQ", qpath))
                for label, onnx_path in variants:
                    session = ort_session(onnx_path, threads=args.threads)
                    ms = [f"{time_ort(session, h, w, args.repeats, stat='min'):.1f} / "
                          f"{time_ort(session, h, w, args.repeats):.1f}" for h, w in SIZES]
                    print(f"| {width} | {depth} | {count_params(model)} | "
                          f"{macs_per_lr_pixel(model) / 1e3:.1f} | {label} | "
                          f"{ms[0]} | {ms[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
