"""The prompt for one attempt, bounded in size.

Two parts: `system` is stable across the attempts of a feature (rules, principles and protected
paths common to all features, then the feature and the checks that will judge it) so backends can
cache it; `prompt` is what changed since the last attempt
(its failure, recent progress). Nothing grows without bound: every part has a character cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.books.records import Evidence
from harness.fileio import clip
from harness.plan.prd import Check, Comparison, Feature, claim_text

if TYPE_CHECKING:
    from harness.project import Project

PRINCIPLES_FILE = "DESIGN-PRINCIPLES.md"

PRINCIPLES_MAX = 6_000
FAILURE_MAX = 1_500  # tail of the failing output, as AI-Scientist does; enough for a traceback
PROGRESS_MAX = 3_000

RULES = """\
You are a coding agent working in a git repository on ONE feature of a research plan.
- The harness, not you, decides whether the feature passes: after you stop it runs the checks
  listed below itself, in a clean process, and records the figures. Saying it passes changes nothing.
- You cannot change the plan or the judge: PRD.json, progress.txt, .ralph/, .git/ and the
  protected paths below are restored after your turn and any edit fails the attempt as tampering.
- Metric files the gates read are set aside before verification: they must be produced by the
  check commands themselves, so write code that produces them, not the numbers.
- Long experiments belong in the check commands (the harness runs them with their own timeouts);
  keep your own commands short. Do not commit: the harness commits verified work.
- When you are done, stop and reply with a short summary of what you changed and why."""


def describe_check(check: Check, default_timeout_s: float) -> str:
    """One line per check, exactly as the harness will run it."""
    seeds = f" for seeds {check.seeds}" if check.seeds else ""
    if check.run is not None:
        where = ""
        if check.on_ray:
            res = check.resources
            where = (f", as a Ray job{' per seed' if check.seeds else ''} on the cluster"
                     + (f" ({res.gpus:g} GPU, {res.cpus:g} CPU)" if res else "")
                     + "; only the feature's metric files" + (" and the artifacts " + ", ".join(check.artifacts)
                                                           if check.artifacts else "") + " come back")
        return (f"- {check.name}: `{check.run}`{seeds} must exit 0 within {check.timeout_s or default_timeout_s:g}s"
                f"{where}")
    if check.compare is not None:
        return f"- {check.name}: {describe_comparison(check.compare)}"
    gate = check.metric
    assert gate is not None
    agg = f" ({check.agg or 'mean'} over seeds {check.seeds})" if check.seeds else ""
    return f"- {check.name}: {gate.file} key `{gate.key}`{agg} must be {gate.op} {gate.value:g}"


def describe_comparison(comp: Comparison) -> str:
    """A comparison as the agent and the report read it: both sides, their seeds, the claim and its test."""
    how = "paired by seed, paired t-test" if comp.paired else "two groups, Welch t-test"
    return (f"a = {comp.a.file} key `{comp.a.key}` (seeds {comp.seeds_of('a')}) against b = {comp.b.file} key "
            f"`{comp.b.key}` (seeds {comp.seeds_of('b')}); {claim_text(comp.test, comp.margin)} must be shown at "
            f"p < {comp.alpha:g} ({how}{', TOST' if comp.test == 'equivalent' else ''})")


def build_common(principles: str, *, protected: list[str]) -> str:
    """What every feature's system prompt starts with: the rules, the design principles, the protected paths."""
    parts = [RULES]
    if principles.strip():
        parts.append("# Design principles of this repository\n" + clip(principles.strip(), PRINCIPLES_MAX))
    if protected:
        parts.append("# Protected paths (do not edit)\n" + "\n".join(f"- {p}" for p in protected))
    return "\n\n".join(parts)


def describe_dependencies(dependencies: Mapping[str, str]) -> str:
    """`id -> status` of the features this one builds on, stated as they are (the loop starts an attempt
    only once all of them pass, so in a real attempt every one reads "verified")."""
    if not dependencies:
        return ""
    done = [d for d, status in dependencies.items() if status == "passing"]
    open_ = [f"{d} ({status})" for d, status in dependencies.items() if status != "passing"]
    lines = []
    if done:
        lines.append(f"Builds on (verified by the harness): {', '.join(done)}")
    if open_:
        lines.append(f"Builds on (not verified yet): {', '.join(open_)}")
    return "\n".join(lines)


def build_feature(feature: Feature, *, dependencies: Mapping[str, str], check_timeout_s: float) -> str:
    """The feature's own part: what it is, what it builds on, and the checks that will judge it."""
    feature_lines = [f"# Feature {feature.id}: {feature.title}"]
    if feature.description:
        feature_lines.append(feature.description)
    if feature.acceptance:
        feature_lines.append("Acceptance:\n" + "\n".join(f"- {a}" for a in feature.acceptance))
    if dependencies:
        feature_lines.append(describe_dependencies(dependencies))
    checks = [describe_check(c, check_timeout_s) for c in feature.verify] or ["- (none: this feature cannot pass)"]
    return "\n".join(feature_lines) + "\n\n# The checks that will judge it\n" + "\n".join(checks)


def build_system(principles: str, feature: Feature, *, protected: list[str], check_timeout_s: float,
                 dependencies: Mapping[str, str]) -> str:
    """The stable part: `build_common`, then `build_feature`. `dependencies` maps each of
    `feature.depends_on` to its ledger status."""
    return build_common(principles, protected=protected) + "\n\n" + build_feature(
        feature, dependencies=dependencies, check_timeout_s=check_timeout_s)


def describe_failure(evidence: list[Evidence]) -> str:
    """The failing checks of an attempt: verdict, detail and the tail of their output."""
    lines = []
    for e in evidence:
        if e.passed:
            continue
        lines.append(f"- {e.check}: {e.verdict}, {e.detail}")
        if e.output_tail.strip():
            lines.append(clip(e.output_tail.strip(), FAILURE_MAX, keep="tail"))
    return "\n".join(lines)


def build_prompt(attempt: int, max_attempts: int, last_failure: str, recent_progress: str) -> str:
    """The per-attempt part: which attempt this is, what failed last time, what happened lately."""
    parts = [f"This is attempt {attempt} of at most {max_attempts} for this feature."]
    if last_failure.strip():
        parts.append("# The last attempt failed verification\n" + clip(last_failure.strip(), 2 * FAILURE_MAX, "tail"))
    if recent_progress.strip():
        parts.append("# Recent progress (harness log)\n" + clip(recent_progress.strip(), PROGRESS_MAX, "tail"))
    parts.append("Do the work now. The harness verifies when you stop.")
    return "\n\n".join(parts)


def attempt_prompts(project: Project, feature: Feature, attempt: int, max_attempts: int,
                    last_failure: str) -> tuple[str, str]:
    """(system, prompt) for one attempt, exactly as the agent receives them (and `--dry-run` shows)."""
    path = project.repo / PRINCIPLES_FILE
    principles = path.read_text(encoding="utf-8") if path.is_file() else ""
    system = build_system(principles, feature, protected=project.protected,
                          check_timeout_s=project.prd.defaults.check_timeout_s,
                          dependencies={d: project.ledger.feature(d).status for d in feature.depends_on})
    return system, build_prompt(attempt, max_attempts, last_failure, project.progress.tail(3))
