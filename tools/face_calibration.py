"""How small a face the full-range detector finds in one 192×192 input.

For each face height (input pixels), the astronaut's head (``skimage.data``) is scaled
so that her face box has that height and pasted at random places on crops of the
training photos, ``--trials`` times; a trial counts as found when the best anchor's
score passes ``--score`` and its box overlaps the true face box by IoU ≥ 0.4. This is
what :data:`localsr_cam.process.faces.DETECTOR_MIN_FACE` is chosen from.

    PYTHONPATH=$PWD .venv/bin/python tools/face_calibration.py --trials 16
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from localsr_cam.process import faces
from localsr_cam.zoo.backends import open_engine

ASTRONAUT_FACE = np.array([172.0, 66.0, 278.0, 172.0])  # x0, y0, x1, y1 in the 512² image
BACKGROUNDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"


def backgrounds(limit: int = 8) -> list[np.ndarray]:
    """Up to ``limit`` training photos (BGR), or flat grey when the folder is absent."""
    images = [cv2.imread(str(p)) for p in sorted(BACKGROUNDS.glob("*.png"))[:limit]]
    found = [image for image in images if image is not None]
    return found or [np.full((600, 600, 3), 110, dtype=np.uint8)]


def trial(face: float, rng: np.random.Generator, scenes: list[np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray]:
    """One 192×192 BGR input with the astronaut's face ``face`` px tall, and its box."""
    scene = scenes[int(rng.integers(len(scenes)))]
    side = int(rng.integers(192, min(scene.shape[:2]) + 1))
    y, x = (int(rng.integers(0, s - side + 1)) for s in scene.shape[:2])
    canvas = cv2.resize(scene[y:y + side, x:x + side], (192, 192),
                        interpolation=cv2.INTER_AREA)
    scale = face / float(ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
    head = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    margin = max(face / 2, 16)
    cx, cy = (float(rng.uniform(margin, 192 - margin)) for _ in range(2))
    shift_x = cx - (ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2 * scale
    shift_y = cy - (ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3]) / 2 * scale
    move = np.array([[1, 0, shift_x], [0, 1, shift_y]], dtype=np.float32)
    pasted = cv2.warpAffine(small, move, (192, 192))
    inside = cv2.warpAffine(np.full(small.shape[:2], 255, np.uint8), move, (192, 192)) > 0
    canvas[inside] = pasted[inside]
    box = ASTRONAUT_FACE * scale + np.array([shift_x, shift_y, shift_x, shift_y])
    return canvas, box.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--score", type=float, default=faces.DEFAULT_SCORE)
    parser.add_argument("--heights", type=float, nargs="+",
                        default=[10, 12, 14, 16, 18, 20, 24, 28, 32, 40, 56, 80, 110, 140])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    scenes = backgrounds()
    anchors = faces.anchor_centers()
    engine = open_engine("face", "cpu", threads=1)
    print(f"| face height in the 192 input (px) | found (score > {args.score:g}, IoU ≥ 0.4) "
          f"| median score |")
    print("|---:|---:|---:|")
    try:
        for face in args.heights:
            inputs, boxes = zip(*(trial(face, rng, scenes) for _ in range(args.trials)),
                                strict=True)
            outputs = engine({"image": faces.to_input_tensor(np.stack(inputs))})
            regressors = outputs["regressors"].numpy()
            logits = outputs["scores"].numpy()[..., 0]
            found, scores = 0, []
            for k, box in enumerate(boxes):
                best = int(logits[k].argmax())
                decoded, _ = faces.decode(regressors[k, best:best + 1], anchors[best:best + 1])
                score = float(faces.sigmoid_scores(logits[k, best]))
                scores.append(score)
                found += score > args.score and faces.box_iou(box, decoded)[0] >= 0.4
            print(f"| {face:g} | {found}/{args.trials} | {np.median(scores):.2f} |")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
