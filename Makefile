# Set-up for a fresh machine: `make run` (install, prepare models, run on the sample)
# and `make test` (install, prepare models, lint, type-check, test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FRAMES ?= 150

.PHONY: install models run test lint typecheck pytest xvfb bench eval eval-portraits clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade-strategy only-if-needed -e '.[dev]'
	# type stubs for checking the TensorRT backend with mypy. Not in the venv: a bare
	# 'tensorrt' folder there would make the backend look installed. --no-deps: its
	# declared dependency 'tensorrt' is a stub that fetches from another index and fails.
	# The sed mends two syntax errors in the stub file that stop mypy.
	$(BIN)/pip install --no-deps --upgrade --target .cache/tensorrt-stubs tensorrt-stubs==10.13.0.35.1
	sed -i -e 's/, in: /, in_: /' \
	  -e 's/power: Weights = None, channel_axis: int)/power: Weights = None, channel_axis: int = ...)/' \
	  .cache/tensorrt-stubs/tensorrt_bindings/tensorrt.pyi
	touch $(STAMP)

install: $(STAMP)

models: $(STAMP)
	$(BIN)/localsr-cam models fetch
	$(BIN)/localsr-cam models list

run: models
	$(BIN)/localsr-cam run --source synthetic --frames $(FRAMES)

xvfb:
	@{ command -v Xvfb && command -v xdotool; } >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq xvfb xauth xdotool; }

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: models xvfb
	$(BIN)/pytest

test: lint typecheck pytest

bench: models
	$(BIN)/localsr-cam bench --mode all --frames 300 --json bench.json --md bench.md

eval: models
	$(BIN)/localsr-cam eval --images ../shared/data/val --md eval.md --json eval.json

eval-portraits: models
	$(BIN)/python tools/write_portraits.py .cache/portraits
	$(BIN)/localsr-cam eval --images .cache/portraits --md eval_portraits.md \
	  --json eval_portraits.json --figures eval_portraits

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
