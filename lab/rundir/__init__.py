"""The run directory: what every lab command writes there, one module per concern.

- `directory`: the policy (create, resume, refuse to overwrite) and the run's config.yaml;
- `checkpoint`: `Checkpoint`, the typed checkpoint (checkpoints/last.pt), saved atomically;
- `metrics`: metrics.jsonl, one JSON line per logged record, mirrored to W&B (`RunLogger`);
- `wandb_run`: the W&B side: mode, labels linking a run to the plan, start / resume, publish;
- `provenance`: which code, seed, libraries and how many processes made a result;
- `results`: the results writer (results.json, stream.json), atomic.

Used by `lab train` (lab.train.loop), `lab stream` (lab.train.stream), `lab eval` (lab.evaluate)
and `lab llm` (lab.llm.results). Nothing is re-exported here; this package imports nothing of the
training or evaluation code.
"""
