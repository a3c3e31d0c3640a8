# The README's commands. Every target installs what it needs first, so on a fresh machine
# `make demo` and `make test` each work as the first command typed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test test-clis test-ray bench bench-gpu clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	@command -v bwrap >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) || \
	  echo "note: bubblewrap not installed; 'ralph run' will run without a sandbox (and warn on every run)"; }
	@# tmux drives the approval prompt through a real terminal, chromium renders `ralph report` (tests skip without them)
	@{ command -v tmux >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; } || \
	  { command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    tmux chromium >/dev/null) || echo "note: tmux/chromium not installed; the terminal and report-screenshot tests will skip"; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints/cpu.txt -e ".[lab,llm,dev,cluster]"
	@touch $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -n 2 --timeout 300 -m "not clis and not ray"

# Checks as jobs on a real local Ray head (docs/cluster.md), about two minutes. The head runs inside
# a private network namespace (only loopback), so nothing it opens is reachable from outside.
test-ray: setup
	@unshare -n sh -c 'ip link set lo up' 2>/dev/null || { echo "note: test-ray skipped: this machine does not allow a private network namespace (unshare -n; needs root or user namespaces, and iproute2)"; exit 0; }
	unshare -n sh -c 'ip link set lo up && exec $(PY) -m pytest -q -n 0 --timeout 600 -m ray tests/ray'

# The real agent CLIs (Claude Code, Codex, aider) end to end against local fake APIs: a plain feature, and an
# optimize search, with each. Installs the pinned versions into ~/.cache/ralph-test-clis on first use (minutes).
test-clis: setup
	$(PY) -m pytest -q -n 2 --timeout 1800 -m clis tests/clis

# CPU figures, each a ratio against a baseline timed in the same run (docs/scale.md).
# The start-up gate (issue 24 asks for 2x) runs last: it does not hold, nor can it while status validates PRD.json with
# pydantic (docs/quickstart.md, Start-up time, and the floor rows the script prints); a failure there must not keep
# the other figures from being measured.
bench: setup
	$(PY) scripts/bench_progress.py --runs 3 --progress-mb 50 --max-ratio 1.5
	$(VENV)/bin/lab bench views --threads 1 --batch-size 256 --per-sample 64 --reps 2
	$(VENV)/bin/lab bench train --threads 1 --batch-size 32 --steps 2
	$(VENV)/bin/lab bench stream --threads 1 --batch-size 4 --steps 1
	$(PY) scripts/bench_scale.py
	unshare -n sh -c 'ip link set lo up && exec $(PY) scripts/bench_ray_seeds.py'
	$(PY) scripts/bench_optimize.py --trials 4 --train-s 2
	$(PY) scripts/bench_startup.py --runs 10 --max-ratio 2

# The same on CUDA: bf16 autocast, channels_last, torch.compile (train.compile), views batched on the GPU.
bench-gpu: setup
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'bench-gpu needs a CUDA GPU: torch.cuda.is_available() is False here')"
	$(VENV)/bin/lab bench views --device cuda --batch-size 512 --per-sample 128 --workers 8 --out runs/bench/gpu/views.json
	$(VENV)/bin/lab bench train --device cuda --batch-size 256 --steps 20 --workers 8 --set train.compile=true --out runs/bench/gpu/train.json
	$(VENV)/bin/lab bench stream --device cuda --batch-size 128 --steps 10 --out runs/bench/gpu/stream.json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
