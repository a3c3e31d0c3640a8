#!/bin/bash
# A scripted agent: one recipe change per call (its k-th call makes the k-th change), with its hypothesis.
# It reads nothing of the leaderboard: a fixed list of guesses, some good, some noise, one broken.
cat > /dev/null
counter="${OPT_AGENT_COUNTER:?set OPT_AGENT_COUNTER to a file outside the repository}"
k=$(cat "$counter" 2>/dev/null || echo 0); echo $((k + 1)) > "$counter"
set_cfg() { python -c "import json,sys; c=json.load(open('config.json')); c[sys.argv[1]]=json.loads(sys.argv[2]); json.dump(c, open('config.json','w'))" "$1" "$2"; }
case $k in
  0) set_cfg lr 0.005;          echo "a 10x larger learning rate converges within the epoch budget" > hypothesis.txt ;;
  1) set_cfg width 9;           echo "one more hidden unit helps (a noise-level change)" > hypothesis.txt ;;
  2) set_cfg width 32;          echo "a wider hidden layer (32) fits the digits better" > hypothesis.txt ;;
  3) set_cfg weight_decay 0.0002; echo "slightly more weight decay regularises (noise-level)" > hypothesis.txt ;;
  4) set_cfg epochs -1;         echo "an invalid epoch count (this trial should crash)" > hypothesis.txt ;;
  5) set_cfg lr 0.02;           echo "an even larger learning rate (0.02)" > hypothesis.txt ;;
  6) set_cfg width 64;          echo "width 64" > hypothesis.txt ;;
  *) set_cfg weight_decay 0.001; echo "weight decay 1e-3" > hypothesis.txt ;;
esac
