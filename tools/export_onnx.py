"""Re-export a trained SR U-Net's ONNX from its shipped weights and check parity.

Reads ``engines/<model>.pt`` (config from the manifest), writes ``engines/<model>.onnx``
(input ``image``, output ``sr``, dynamic batch/height/width, opset 17), checks ONNX
Runtime against PyTorch on odd sizes and updates the ONNX sha256 and parity figure in
the manifest entry. Optionally times ORT on a 320×240 and a 640×360 LR input.

    .venv/bin/python tools/export_onnx.py --model fast --time
"""

from __future__ import annotations

import argparse
import logging
import sys

from localsr_cam.errors import EXIT_USAGE, LocalSRError
from localsr_cam.paths import sha256_file
from localsr_cam.zoo.artifacts import engines_dir, read_manifest, write_manifest_entry
from localsr_cam.zoo.export import ort_session, parity, time_ort
from localsr_cam.zoo.loading import load_model
from localsr_cam.zoo.registry import exportable_models, model_spec

SIZES = ((1, 1), (3, 5), (17, 33), (61, 47), (240, 320))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=exportable_models(), required=True)
    parser.add_argument("--time", action="store_true", help="time ORT (2 threads)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        spec = model_spec(args.model)
        assert spec.onnx is not None and spec.export is not None
        model = load_model(args.model)
        path = engines_dir() / spec.onnx
        spec.export(model, path)
        worst = parity(model, path, sizes=SIZES)
        print(f"{args.model}: ORT vs PyTorch max |diff| {worst:.3g} over sizes {SIZES}")
        entry = read_manifest().get(args.model)
        if entry:
            entry["files"]["onnx"]["sha256"] = sha256_file(path)
            entry["onnx"]["ort_vs_torch_max_abs"] = float(f"{worst:.3g}")
            write_manifest_entry(args.model, entry)
        if args.time:
            session = ort_session(path, threads=2)
            for h, w in ((240, 320), (360, 640)):
                print(f"{args.model}: ORT CPU 2 threads {w}x{h} LR: "
                      f"{time_ort(session, h, w, repeats=20):.1f} ms (median)")
    except LocalSRError as exc:
        print(f"export_onnx: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
