"""A toy search for the optimize tests: `train.py SEED` reads config.json's lr and writes a score that peaks at
lr = 0.3, with seed-to-seed noise of about 0.01; a scripted agent (bash) sets lr, one value per trial."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tests.harness.conftest import git

TRAIN = """import json, os, random, sys
seed = int(sys.argv[1])
lr = json.load(open("config.json"))["lr"]
score = 1 - (lr - 0.3) ** 2 + random.Random(f"{seed}-{lr}").gauss(0, 0.01)
os.makedirs(f"runs/opt-s{seed}", exist_ok=True)
json.dump({"score": score}, open(f"runs/opt-s{seed}/results.json", "w"))
"""
HOLDOUT = """import json, os, sys
seed = int(sys.argv[1])
truth = float(open("holdout/truth.txt").read())
score = json.load(open(f"runs/opt-s{seed}/results.json"))["score"]
os.makedirs("out", exist_ok=True)
json.dump({"score": score - truth}, open(f"out/h-s{seed}.json", "w"))
"""

# a seeded check that first sleeps as long as config.json's "sleep" says (the agent's to set), then trains
SLOW_TRAIN = ("python -c \"import json, time; time.sleep(json.load(open('config.json')).get('sleep', 0))\" && "
              "python train.py {seed}")


def optimize_plan(**extra: Any) -> dict[str, Any]:
    opt = {"metric": {"file": "runs/opt-s{seed}/results.json", "key": "score"}, "direction": "max",
           "seeds": [0, 1, 2, 3, 4], "confirm_seeds": [10, 11, 12, 13, 14], "budget": {"attempts": 3, "hours": 1},
           "fixed": ["train.py", "eval_holdout.py"], **extra}
    return {
        "version": 1, "project": "opt",
        "defaults": {"max_attempts": 1, "attempt_timeout_s": 60, "check_timeout_s": 60},
        "phases": [{"id": 1, "name": "Search", "approval": False}],
        "features": [{"id": "OPT-1", "phase": 1, "title": "tune lr", "verify": [
            {"name": "train", "run": "python train.py {seed}", "seeds": [0, 1]}], "optimize": opt}],
    }


def optimize_repo(repo: Path, plan: dict[str, Any] | None = None, lr: float = 0.1) -> Path:
    (repo / "PRD.json").write_text(json.dumps(plan or optimize_plan(), indent=2))
    (repo / ".gitignore").write_text(".ralph/\nruns/\nout/\n")
    (repo / "train.py").write_text(TRAIN)
    (repo / "eval_holdout.py").write_text(HOLDOUT)
    (repo / "config.json").write_text(json.dumps({"lr": lr}))
    (repo / "holdout").mkdir()
    (repo / "holdout" / "truth.txt").write_text("0.25\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "setup")
    return repo


def lr_agent(tmp: Path, lrs: list[float], extra: str = "") -> str:
    """A command agent that sets lr to lrs[k] on its k-th call and states why; `extra` runs after (bash)."""
    counter = tmp / f"calls-{random.randrange(10**9)}"
    values = " ".join(str(v) for v in lrs)
    path = tmp / f"agent-{random.randrange(10**9)}.sh"
    path.write_text(f"""#!/bin/bash
cat > /dev/null
k=$(cat {counter} 2>/dev/null || echo 0); echo $((k + 1)) > {counter}
lrs=({values}); lr=${{lrs[$k]}}
echo "{{\\"lr\\": $lr}}" > config.json
echo "lr $lr should score higher" > hypothesis.txt
{extra}
""")
    path.chmod(0o755)
    return str(path)
