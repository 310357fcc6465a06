#!/usr/bin/env bash
# Everything to check on a CUDA GPU, in one call (e.g. a lent GPU machine):
#
#   1. a Python whose torch sees the GPU (.venv, else python3; a venv is made if neither);
#   2. pytest -m gpu: torch-cuda engine (graphs captured in prepare() into one pool),
#      the double-buffered scheduler (torch's sync debug mode with a moving subject: at
#      most one device sync a frame), fp16 drift of FastUNet, PaperUNet and both selfie
#      segmenters, every model on cuda/tensorrt, TensorRT (plans built only by
#      `models build-engines`, context memory from torch) if installed;
#   3. fp16 vs fp32 parity of FastUNet: PSNR difference against HR images (goal <= 0.05 dB);
#   4. localsr-cam bench --backend cuda --mode all at 640x360 and 960x540 input,
#      single- vs double-buffered side by side (and tensorrt when it is installed).
#
# Figures go to stdout and to ${OUT:-.}/gpu_check.json (every bench report merged in),
# with the full output in gpu_check.log and the test results in gpu_pytest.xml.
# A failing or missing piece is reported and the rest still runs; the exit status is
# non-zero when any step failed.
#
# Usage (repo root):  tools/gpu_check.sh
# Knobs: PYTHON=path  FRAMES=300  WARMUP=30  SIZES="640x360 960x540"  HR_DIR=folder
#        PARITY_IMAGES=8  SKIP_TESTS=1  SKIP_BENCH=1
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-.}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
FRAMES=${FRAMES:-300}
WARMUP=${WARMUP:-30}
SIZES=${SIZES:-"640x360 960x540"}
PARITY_IMAGES=${PARITY_IMAGES:-8}
LOG="$OUT/gpu_check.log"
STEPS="$OUT/.gpu_check_steps.jsonl"
export PYTHONUNBUFFERED=1
: >"$LOG"
: >"$STEPS"
failed=0

say() { echo "gpu_check: $*" | tee -a "$LOG"; }

step() {  # step NAME RC [NOTE]: remember one step's outcome for the summary
    local note=${3:-}
    note=${note//\\/\\\\}
    note=${note//\"/\\\"}
    printf '{"step": "%s", "rc": %s, "note": "%s"}\n' "$1" "$2" "$note" >>"$STEPS"
    if [ "$2" != 0 ]; then failed=1; fi
}

# -- 1. Python with CUDA torch -------------------------------------------------------------
cuda_python() {
    local candidate
    for candidate in "${PYTHON:-}" .venv/bin/python python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
                >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! PY=$(cuda_python); then
    say "no Python with CUDA-enabled torch; creating .venv (needs the package index)"
    if [ -f Makefile ] && grep -q '^install:' Makefile; then
        make install >>"$LOG" 2>&1
    else
        { python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'; } >>"$LOG" 2>&1
    fi
    if ! PY=$(cuda_python); then
        say "still no torch that sees a CUDA GPU; nothing to check"
        exit 1
    fi
fi
if ! "$PY" -c 'import localsr_cam' >/dev/null 2>&1; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # not installed: use the checkout
fi
say "python: $PY"
"$PY" - "$OUT/.gpu_check_env.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, platform, sys
import torch
from localsr_cam.runtime.base import tensorrt_problem
env = {"python": platform.python_version(), "torch": torch.__version__,
       "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(),
       "compute_capability": ".".join(map(str, torch.cuda.get_device_capability())),
       "tensorrt": tensorrt_problem() or "available"}
if env["tensorrt"] == "available":
    import tensorrt
    env["tensorrt"] = tensorrt.__version__
print("environment:", json.dumps(env))
json.dump(env, open(sys.argv[1], "w"))
EOF
step environment $?

# -- 2. GPU tests ---------------------------------------------------------------------------
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    say "pytest -m gpu"
    "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider --continue-on-collection-errors \
        --junitxml="$OUT/gpu_pytest.xml" tests 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    step pytest_gpu "$rc" "$(tail -n 1 "$LOG")"
fi

# -- 3. fp16 vs fp32 parity ------------------------------------------------------------------
say "fp16 vs fp32 parity (FastUNet)"
"$PY" - "$OUT/.gpu_check_parity.json" "$PARITY_IMAGES" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, sys
from pathlib import Path
import cv2, torch
from localsr_cam.errors import ModelError
from localsr_cam.measure.precision import fp16_drift

GOAL_DB = 0.05
limit = int(sys.argv[2])
folders = [os.environ.get("HR_DIR", ""), "shared/data/val", "../shared/data/val"]
paths = []
for folder in filter(None, folders):
    found = sorted(p for p in Path(folder).rglob("*")
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if found:
        paths, source = found[:limit], folder
        break
images = []
for path in paths:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        continue
    h, w = bgr.shape[:2]
    side = min(512, h, w) // 2 * 2  # a centre crop keeps the run short
    y, x = (h - side) // 2, (w - side) // 2
    rgb = bgr[y:y + side, x:x + side, ::-1].copy()
    images.append(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
if not images:
    source = "synthetic (no HR images found; set HR_DIR)"
    gen = torch.Generator().manual_seed(0)
    for _ in range(limit):
        small = torch.rand((1, 3, 32, 32), generator=gen)
        images.append(torch.nn.functional.interpolate(small, size=(256, 256),
                                                      mode="bicubic").clamp(0, 1))
try:
    from localsr_cam.zoo.loading import load_model
    module, weights = load_model("fast"), "shipped engines/fast_unet.pt"
except ModelError as exc:
    from localsr_cam.models.unet import FastUNet
    module, weights = FastUNet().eval(), f"untrained FastUNet ({exc})"
figures = fp16_drift(module, images)
figures.update(goal_db=GOAL_DB, within_goal=figures["drift_db"] <= GOAL_DB,
               images_from=source, weights=weights)
print("parity:", json.dumps(figures))
json.dump(figures, open(sys.argv[1], "w"))
sys.exit(0 if figures["within_goal"] else 1)
EOF
step parity "${PIPESTATUS[0]}"

# -- 4. benchmarks --------------------------------------------------------------------------
bench_flags=$("$PY" -m localsr_cam bench --help 2>&1)
has_flag() { grep -q -- "$1" <<<"$bench_flags"; }
common=()
for flag in --backend --mode --input --frames --warmup --json; do
    has_flag "$flag" || say "bench has no $flag flag: the figures below lack it"
done
has_flag --frames && common+=(--frames "$FRAMES")
has_flag --warmup && common+=(--warmup "$WARMUP")
has_flag --mode && common+=(--mode all)
has_flag --no-progress && common+=(--no-progress)
if has_flag --buffering; then
    bufferings="single double"
else
    bufferings="default"
    say "bench has no --buffering flag: single- vs double-buffered cannot be compared yet"
fi
backends="cuda"
if "$PY" -c 'from localsr_cam.runtime.base import tensorrt_problem as p; \
             import sys; sys.exit(p() is not None)' >/dev/null 2>&1; then
    say "TensorRT present: building engines and benchmarking it too"
    "$PY" -m localsr_cam models build-engines 2>&1 | tee -a "$LOG"
    step build_engines "${PIPESTATUS[0]}"
    backends="cuda tensorrt"
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
    for backend in $backends; do
        for size in $SIZES; do
            for buffering in $bufferings; do
                name="bench_${backend}_${size}_${buffering}"
                args=("${common[@]}")
                has_flag --backend && args+=(--backend "$backend")
                has_flag --input && args+=(--input "$size")
                has_flag --json && args+=(--json "$OUT/$name.json")
                [ "$buffering" != default ] && args+=(--buffering "$buffering")
                say "bench ${args[*]}"
                "$PY" -m localsr_cam bench "${args[@]}" 2>&1 | tee -a "$LOG"
                step "$name" "${PIPESTATUS[0]}"
            done
        done
    done
fi

# -- summary --------------------------------------------------------------------------------
"$PY" - "$OUT" <<'EOF' 2>&1 | tee -a "$LOG"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
steps = [json.loads(line) for line in (out / ".gpu_check_steps.jsonl").read_text().splitlines()
         if line.strip()]
summary = {"environment": load(out / ".gpu_check_env.json"),
           "parity": load(out / ".gpu_check_parity.json"), "steps": steps, "bench": {}}
rows = []
for path in sorted(out.glob("bench_*.json")):
    report = load(path)
    if not report:
        continue
    summary["bench"][path.stem] = report
    _, backend, size, buffering = path.stem.split("_", 3)
    for mode, fig in report.get("modes", {}).items():
        lat = fig.get("latency_ms", {})
        rows.append((backend, size, buffering, mode, fig.get("fps"), lat.get("p50"),
                     lat.get("p95")))
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
for path in out.glob("bench_*.json"):  # merged above; the file count that comes back is small
    path.unlink()
print(f"\n{'backend':9} {'input':8} {'buffering':9} {'mode':8} {'fps':>8} {'p50 ms':>8} "
      f"{'p95 ms':>8}")
for backend, size, buffering, mode, fps, p50, p95 in rows:
    cell = lambda v: "-" if v is None else f"{v:.1f}"
    print(f"{backend:9} {size:8} {buffering:9} {mode:8} {cell(fps):>8} {cell(p50):>8} "
          f"{cell(p95):>8}")
parity = summary["parity"] or {}
if parity:
    print(f"\nfp16 parity: PSNR fp32 {parity['psnr_fp32_db']:.3f} dB, fp16 "
          f"{parity['psnr_fp16_db']:.3f} dB, drift {parity['drift_db']:.4f} dB "
          f"(goal <= {parity['goal_db']}), {parity['images_from']}")
print("steps: " + ", ".join(f"{s['step']}={'ok' if s['rc'] == 0 else 'FAILED'}"
                            for s in steps))
print(f"written: {out / 'gpu_check.json'}")
EOF
rm -f "$OUT"/.gpu_check_*.json "$STEPS"
exit "$failed"
