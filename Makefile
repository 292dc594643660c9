# ghframes: every target sets up what it needs (.venv, dependencies) on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export RAY_USAGE_STATS_ENABLED := 0

# Data locations and sources, overridable: make crawl SOURCES="owner/name ../repo" OUT=data
OUT      ?= data
SOURCES  ?= $(OUT)/sample-repo
CRAWL_ARGS  ?=
RENDER_ARGS ?=
TRAIN_ARGS  ?=

.PHONY: setup test lint demo crawl render train bench synthetic statetracking scaling clean

setup: $(STAMP)

# torch is installed first and pinned: any looser requirement downloads a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@# The viewer is tested in a real terminal (tmux) and a real browser (Chromium); PNG and GIF
	@# exports draw what DejaVu Sans Mono lacks (Hangul, Hebrew, ...) from GNU Unifont.
	@command -v tmux >/dev/null && command -v chromium >/dev/null && \
	  [ -e /usr/share/fonts/opentype/unifont/unifont.otf ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux chromium fonts-dejavu-core \
	      fonts-unifont >/dev/null; } || \
	  echo "note: tmux, chromium or fonts-unifont is missing; the tests that need them will be skipped"
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check ghframes pipelines training schemas tests
	$(VENV)/bin/ruff format --check ghframes pipelines training schemas tests

$(OUT)/sample-repo: | setup
	$(PY) -m ghframes.sample $@

demo: setup
	$(PY) -m ghframes.demo --out $(OUT)

crawl: setup $(filter $(OUT)/sample-repo,$(SOURCES))
	$(PY) -m ghframes crawl $(SOURCES) --out $(OUT) $(CRAWL_ARGS)

render: setup
	$(PY) -m ghframes render $(OUT) $(RENDER_ARGS)

train: setup
	$(PY) -m ghframes.training.train --data $(OUT) --out $(OUT)/train $(TRAIN_ARGS)

bench: setup
	$(PY) -m ghframes.bench --json bench.json

clean:
	rm -rf $(VENV) $(OUT) bench.json .pytest_cache

# Serial-depth benchmarks (FRJT, withheld maze): quick preset, 2 CPU cores, under 15 minutes.
synthetic: setup
	$(PY) -m ghframes.training.synthetic --preset quick --out $(OUT)/synthetic

# REPL-trace state tracking (Siems et al.): quick preset, 2 CPU cores, under 20 minutes (11 min
# measured on a shared VM); STATETRACKING_PRESET=cpu for S5 and the controls with two seeds
# (about 50 minutes on 2 idle cores); STATETRACKING_PRESET=full on a GPU.
STATETRACKING_PRESET ?= quick
statetracking: setup
	$(PY) -m ghframes.training.synthetic.statetracking --preset $(STATETRACKING_PRESET) --out $(OUT)/statetracking

# Held-out loss against trained sequence length (the seed paper's headline): quick preset, 2 CPU
# cores, under 30 minutes; SCALING_PRESET=full on a GPU.
SCALING_PRESET ?= quick
scaling: setup
	$(PY) -m ghframes.training.scaling --preset $(SCALING_PRESET) --out $(OUT)/scaling
