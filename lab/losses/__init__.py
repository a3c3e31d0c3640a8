"""Losses as pure functions with documented shapes, one module per family:

- `lab.losses.jepa`: the prediction losses (`cosine_loss`, `sharpened_loss`);
- `lab.losses.coding_rate`: the coding rate R, its class-conditional form and its ceiling;
- `lab.losses.objective`: `objective`, the configured terms assembled into the training loss;
- `lab.losses.local`: the local (blockwise) stage losses;
- `lab.losses.gather`: every rank's rows under data parallel, for the terms that are batch statistics.

Nothing is re-exported here: a function named like its module (`coding_rate`, `objective`) would
replace the module as the package's attribute, and `import lab.losses.coding_rate as m` would
give the function.
"""
