#!/bin/bash
# Run the digits search with the scripted agent in a fresh git repository; copy its leaderboard and plot here.
# Usage: bash experiments/optimize/run.sh [RALPH] (default: ralph on PATH). About 5-10 minutes on 2 CPU cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ralph="${1:-ralph}"
work="$(mktemp -d)"
cp -r "$here/project" "$work/repo"
cd "$work/repo"
python -c "
import numpy as np
from sklearn.datasets import load_digits
n = len(load_digits().target); rng = np.random.default_rng(0); order = rng.permutation(n)
import os; os.makedirs('data', exist_ok=True); os.makedirs('holdout', exist_ok=True)
np.save('holdout/index.npy', np.sort(order[:300])); np.save('data/visible_index.npy', np.sort(order[300:]))"
printf '.ralph/\nruns/\nout/\n' > .gitignore
git init -q -b main && git add -A && git -c user.name=demo -c user.email=demo@example.com commit -qm "digits search: start"
git config user.name demo && git config user.email demo@example.com
export OPT_AGENT_COUNTER="$work/calls"
start=$(date +%s)
"$ralph" run --agent command --agent-cmd "$work/repo/agent.sh" --no-input --max-iterations 20 || echo "ralph run exit $?"
echo "wall: $(( $(date +%s) - start )) s"
"$ralph" leaderboard OPT-DIGITS --plot "$here/leaderboard.png" | tee "$here/leaderboard.txt"
"$ralph" leaderboard OPT-DIGITS --json > "$here/leaderboard.json"
git log --oneline --all > "$here/git-log.txt"
