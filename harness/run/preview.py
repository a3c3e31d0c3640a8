"""What `ralph run --dry-run` prints: the agent and budgets, the checks, and every prompt an attempt would get.

Apart from the loop (loop.py) so that a dry run loads neither the judge nor GitPython.
"""

from __future__ import annotations

from harness.judge.safepath import safe_path_warnings
from harness.project import Project
from harness.run.prompt import attempt_prompts, describe_check, describe_failure
from harness.settings import RunSettings, check_python


def preview(project: Project, phase_id: int, settings: RunSettings, feature_id: str | None = None, *,
            agent: str = "") -> str:
    """What `ralph run --dry-run` prints: `agent` (the backend, described) and budgets, entry and exit
    checks, the system prompt's common part once, then each feature's own part and its first prompt."""
    phase = project.prd.phase(phase_id)
    d = project.prd.defaults
    python = check_python(project.repo, settings.python)
    max_attempts = settings.max_attempts or d.max_attempts
    out = [f"# Phase {phase.id}: {phase.name} (dry run: nothing is executed)",
           f"agent: {agent or settings.agent}; sandbox {settings.sandbox}",
           f"checks use Python: {python.describe()}",
           *(f"warning: {w}" for w in safe_path_warnings(project.prd, project.repo, python.executable)),
           f"budgets: {settings.max_iterations} attempts in this run, {max_attempts} per feature, "
           f"{settings.attempt_timeout_s or d.attempt_timeout_s:g} s and {settings.max_turns} turns per attempt; "
           f"${settings.max_cost_usd:g}, {settings.max_tokens:,} tokens, {settings.max_hours:g} h for the run"]
    out += ["## Entry checks", *([describe_check(c, d.check_timeout_s) for c in phase.entry] or ["(none)"])]
    features = [project.prd.feature(feature_id)] if feature_id else project.prd.features_in_phase(phase.id)
    common: str | None = None
    for f in features:
        state = project.ledger.feature(f.id)
        if state.status == "passing":
            out.append(f"## {f.id}: passing, skipped")
            continue
        system, prompt = attempt_prompts(project, f, state.attempts + 1, max_attempts,
                                         describe_failure(state.last_evidence))
        head, _, own = system.partition("\n\n# Feature ")
        if common is None:
            common = head
            out += ["## System prompt, common to every feature (cached across attempts)", common]
        waiting = [dep for dep in f.depends_on if project.ledger.feature(dep).status != "passing"]
        note = f" (starts only once {', '.join(waiting)} pass{'es' * (len(waiting) == 1)})" if waiting else ""
        out += [f"## {f.id}: {state.status}, next attempt {state.attempts + 1}/{max_attempts}{note}",
                "### system, this feature's part", "# Feature " + own, "### prompt", prompt]
    out += ["## Exit checks", *([describe_check(c, d.check_timeout_s) for c in phase.exit] or ["(none)"])]
    return "\n\n".join(out)
