#!/bin/bash
# The search's scripted agent (ralph run --agent command --agent-cmd experiments/optimize-seqjepa/agent.sh).
# Deterministic: trial k (read from the prompt's "# Trial k" line) makes change k to recipe.yaml, the only
# file it writes, and states its one-line hypothesis in hypothesis.txt. It reads nothing else of the
# prompt (not the leaderboard): a fixed, pre-registered list of guesses, each applied to the incumbent's
# recipe (the tree ralph hands it is the incumbent's). Uses bash, grep and sed only.
set -euo pipefail
k=$(grep -m1 -oE '^# Trial [0-9]+' | grep -oE '[0-9]+$' || true)
recipe=experiments/optimize-seqjepa/recipe.yaml
[ -n "$k" ] || { echo "no '# Trial N' line in the prompt" >&2; exit 1; }
# one line of the recipe, matched exactly once, replaced
change() {
  [ "$(grep -cE "$1" "$recipe")" = 1 ] || { echo "expected one line matching '$1' in $recipe" >&2; exit 1; }
  sed -i -E "s/$1/$2/" "$recipe"
}
case $k in
  1) change '^    base: 0\.996$' '    base: 0.99'
     echo "EMA target momentum 0.996 -> 0.99: at 384 steps a 0.996 target (time constant ~250 steps) barely leaves its random init, a faster target gives the encoder better targets" > hypothesis.txt ;;
  2) change '^  lr: 1\.0e-3$' '  lr: 2.0e-3'
     echo "peak learning rate 1e-3 -> 2e-3: the 384-step cosine schedule is short, a 2x higher rate learns more in it" > hypothesis.txt ;;
  3) change '^  predictor: \{kind: mlp, hidden: 256\}$' '  predictor: {kind: mlp, hidden: 1024}'
     echo "predictor hidden width 256 -> 1024 (the paper's): more predictor capacity, expected to be noise-level for the encoder at this budget" > hypothesis.txt ;;
  *) echo "no change planned for trial $k (the pre-registered list has 3)" >&2; exit 1 ;;
esac
echo "trial $k: $(cat hypothesis.txt)"
