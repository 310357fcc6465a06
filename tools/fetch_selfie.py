"""Fetch MediaPipe's selfie segmenter and convert it to PyTorch and ONNX.

The same work as ``localsr-cam models fetch``: downloads ``mediapipe==0.10.14`` with pip
(or takes ``--wheel``), converts both ``.tflite`` models, verifies them and writes
``selfie*.pt``, ``selfie*.onnx`` and their manifest entries into the engines folder.
Models already up to date are left alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from localsr_cam.errors import EXIT_USAGE, LocalSRError
from localsr_cam.zoo.selfie_fetch import fetch_models

log = logging.getLogger("fetch_selfie")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines-dir", type=Path,
                        help="where to write the models [default: the project's engines/]")
    parser.add_argument("--wheel", type=Path,
                        help="a downloaded mediapipe-0.10.14 wheel [default: pip download]")
    parser.add_argument("--cache-dir", type=Path,
                        help="where the downloaded wheel is kept [default: <project>/.cache]")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(message)s")
    try:
        built = fetch_models(args.engines_dir, args.cache_dir, args.wheel)
    except LocalSRError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    log.info("built: %s", ", ".join(built) if built else "nothing, all up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
