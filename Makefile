# The README's commands. Every target installs what it needs first, so on a fresh machine
# `make demo` and `make test` each work as the first command typed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test test-clis bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	@command -v bwrap >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) || \
	  echo "note: bubblewrap not installed; 'ralph run --sandbox bwrap' will fall back to --sandbox none"; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints/cpu.txt -e ".[llm,dev]"
	@touch $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -n 2 --timeout 300 -m "not clis"

# The real agent CLIs (Claude Code, Codex, aider) end to end against local fake APIs. Installs the
# pinned versions into ~/.cache/ralph-test-clis on first use (minutes), ~25 s once cached.
test-clis: setup
	$(PY) -m pytest -q -n 2 --timeout 1800 -m clis tests/clis

bench: setup
	$(VENV)/bin/lab bench views --threads 1
	$(VENV)/bin/lab bench train --threads 1 --batch-size 32 --steps 2
	$(PY) scripts/bench_scale.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
