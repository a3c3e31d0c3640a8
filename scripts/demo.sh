#!/usr/bin/env bash
# `make demo`: ralph drives a scripted (replay) agent through a two-phase research plan in a
# scratch repository — entry checks, a failed attempt and its retry, harness-run metric gates,
# commits with trailers, the approval gate, and the status board. Offline and deterministic.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
demo=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ralph-demo.XXXXXX")}
script="$root/examples/demo/script.yaml"

step() { printf '\n\033[1;36m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }
expect() {  # expect CODE CMD...: run CMD, fail the demo unless it exits with CODE
  local want=$1; shift; step "$*"; set +e; "$@"; local got=$?; set -e
  [ "$got" -eq "$want" ] || { echo "demo: expected exit $want from '$*', got $got" >&2; exit 1; }
  printf '\033[2m(exit %s, as expected)\033[0m\n' "$got"
}

mkdir -p "$demo" && cd "$demo"
git init -q
cp -r "$root/examples/demo/PRD.json" "$root/examples/demo/DESIGN-PRINCIPLES.md" "$root/examples/demo/tests" .
cp "$root/examples/demo/gitignore" .gitignore
git add -A && git -c user.name=demo -c user.email=demo@example.invalid commit -qm "demo: research plan"
echo "demo repository: $demo"

export PATH="$bin:$PATH"
run ralph validate
expect 6 ralph run --phase 2 --agent replay --agent-cmd "$script" --no-input   # phase 1 not approved yet
expect 3 ralph run --phase 1 --agent replay --agent-cmd "$script" --no-input   # works, then awaits approval
run ralph status
run ralph approve 1 --by "${USER:-demo}" --note "baseline accuracy gate looked at"
expect 0 ralph run --phase 2 --agent replay --agent-cmd "$script" --yes
run ralph status
run ralph log --tail 3
step "git log --format='%h %s | %(trailers:key=Ralph-Metrics,valueonly,separator=)'"
git log --format='%h %s | %(trailers:key=Ralph-Metrics,valueonly,separator=)'
echo
echo "ralph's records are in $demo (progress.txt, .ralph/state.json, .ralph/runs/*/transcript.jsonl)."

# Act two: the lab the agent would be writing — a real seq-JEPA smoke run on embedded data
# (about a minute on 2 CPU cores), its frozen probes, and the gates a PRD check would call.
if [ "${DEMO_LAB:-1}" != "0" ]; then
  cd "$root"
  run lab train experiments/step1-baseline/smoke.yaml --overwrite --set name=demo-smoke \
    --set eval.copy_to=null --set logging.wandb=false
  run lab gate runs/demo-smoke
  echo "plots: $root/runs/demo-smoke/plots/ (skip this part with DEMO_LAB=0)"
fi
