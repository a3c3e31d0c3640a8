"""`compare` checks: a treatment against a control over seeds, judged by a named statistical test.

What the plan may say (validation with JSON paths), what the judge reads and records (n, the mean
difference, its interval, p, the test's name), and that broken inputs are verdicts, not exceptions.
The false-pass rate and the power are measured in test_compare_calibration.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.books.ledger import legacy_evidence_matches
from harness.books.records import Evidence
from harness.judge.checks import run_check
from harness.judge.freshness import metric_files
from harness.judge.stats import NothingToTest, compare_samples, passed
from harness.plan.prd import Check, Feature, PRDError, json_schema, parse_prd
from harness.run.prompt import describe_check

A_GAIN = [0.952, 0.941, 0.929, 0.930, 0.942]  # a treatment, five seeds
B_BASE = [0.914, 0.892, 0.900, 0.886, 0.901]  # its control, the same seeds


def comparison(**fields: Any) -> dict[str, Any]:
    """A `compare` block reading runs/a-s{seed}.json and runs/b-s{seed}.json, with `fields` on top."""
    return {"a": {"file": "runs/a-s{seed}.json", "key": "eval.r2"}, "b": {"file": "runs/b-s{seed}.json", "key": "eval.r2"},
            "seeds": [0, 1, 2, 3, 4], "paired": True, "test": "greater", **fields}


def compare_check(**fields: Any) -> Check:
    return Check.model_validate({"name": "actions help", "compare": comparison(**fields)})


def write_runs(repo: Path, a: list[float], b: list[float], seeds: list[int] | None = None) -> None:
    """One results file per seed and side: a's nested ({"eval": {"r2": …}}), b's flat ({"eval.r2": …})."""
    for seed, (x, y) in zip(seeds or range(len(a)), zip(a, b)):
        (repo / "runs").mkdir(exist_ok=True)
        (repo / f"runs/a-s{seed}.json").write_text(json.dumps({"eval": {"r2": x}}))
        (repo / f"runs/b-s{seed}.json").write_text(json.dumps({"eval.r2": y}))


def judged(check: Check, repo: Path) -> Evidence:
    return run_check(check, repo, default_timeout_s=5)


def problems_with(prd_dict: dict[str, Any], compare: dict[str, Any], **check: Any) -> list[str]:
    prd_dict["features"][0]["verify"][1] = {"name": "actions help", "compare": compare, **check}
    with pytest.raises(PRDError) as err:
        parse_prd(prd_dict)
    return err.value.problems


# ---------------------------------------------------------------- what the plan may say

WHERE = "features[0].verify[1]"


@pytest.mark.parametrize("test", ["noninferior", "equivalent"])
def test_noninferior_and_equivalent_need_a_margin(prd_dict, test: str) -> None:
    (problem,) = problems_with(prd_dict, comparison(test=test))
    assert problem.startswith(f"{WHERE}.compare: '{test}' needs a 'margin' (> 0, in the key's units)")


def test_a_margin_on_greater_is_refused_and_a_negative_one_everywhere(prd_dict) -> None:
    (problem,) = problems_with(prd_dict, comparison(margin=0.1))
    assert problem == f"{WHERE}.compare: 'margin' applies only to 'noninferior' and 'equivalent', not to 'greater'"
    (problem,) = problems_with(prd_dict, comparison(test="noninferior", margin=-0.1))
    assert problem.startswith(f"{WHERE}.compare.margin: Input should be greater than 0")


def test_paired_refuses_sides_with_different_seeds(prd_dict) -> None:
    sides = comparison(seeds=None, a={"file": "runs/a-s{seed}.json", "key": "k", "seeds": [0, 1, 2]},
                       b={"file": "runs/b-s{seed}.json", "key": "k", "seeds": [0, 1, 5]})
    del sides["seeds"]
    (problem,) = problems_with(prd_dict, sides)
    assert problem.startswith(f"{WHERE}.compare: \"paired\": true compares seed s of a with seed s of b, but a's "
                              "seeds [0, 1, 2] and b's [0, 1, 5] differ")
    unpaired = parse_prd_check(prd_dict, {**sides, "paired": False}).compare
    assert unpaired is not None and unpaired.seeds_of("b") == [0, 1, 5] and not unpaired.same_seeds


def parse_prd_check(prd_dict: dict[str, Any], compare: dict[str, Any]) -> Check:
    prd_dict["features"][0]["verify"][1] = {"name": "actions help", "compare": compare}
    return parse_prd(prd_dict).features[0].verify[1]


def test_each_side_needs_seeds_and_a_placeholder(prd_dict) -> None:
    no_seeds = comparison()
    del no_seeds["seeds"]
    (problem,) = problems_with(prd_dict, no_seeds)
    assert problem.startswith(f"{WHERE}.compare: no seeds for 'a': set \"seeds\": [0, 1, 2, 3, 4] in 'compare'")
    (problem,) = problems_with(prd_dict, comparison(b={"file": "runs/b.json", "key": "eval.r2"}))
    assert problem.startswith(f"{WHERE}.compare: b: neither 'file' nor 'key' has a {{seed}} placeholder")
    (problem,) = problems_with(prd_dict, comparison(seeds=[3]))
    assert problem.startswith(f"{WHERE}.compare.seeds: List should have at least 2 items")


def test_a_comparison_is_its_own_kind_of_check(prd_dict) -> None:
    problems = problems_with(prd_dict, comparison(), seeds=[0, 1])
    assert problems == [f"{WHERE}: a comparison's seeds go inside it: \"compare\": {{\"seeds\": [...], ...}}"]
    (problem,) = problems_with(prd_dict, comparison(), run="true")
    assert problem.startswith(f"{WHERE}: a check needs exactly one of 'run' (a command), 'metric' (a gate) or "
                              "'compare'")


def test_typos_and_bad_values_are_named_with_their_paths(prd_dict) -> None:
    typo = comparison()
    typo["pairde"] = typo.pop("paired")
    (problem,) = problems_with(prd_dict, typo)
    assert problem.startswith(f"{WHERE}.compare.pairde: unknown field; did you mean 'paired'?")
    problems = problems_with(prd_dict, comparison(test="bigger", alpha=0.7))
    assert any(p.startswith(f"{WHERE}.compare.test: Input should be 'greater', 'less'") for p in problems)
    assert any(p.startswith(f"{WHERE}.compare.alpha: Input should be less than 0.5") for p in problems)


def test_the_schema_documents_the_fields() -> None:
    defs = json_schema()["$defs"]
    fields = defs["Comparison"]["properties"]
    assert set(fields) == {"a", "b", "seeds", "paired", "test", "alpha", "margin", "confirm_seeds"}
    assert fields["test"]["enum"] == ["greater", "less", "noninferior", "equivalent"]
    assert "Welch" in fields["paired"]["description"] and "TOST" not in fields["paired"]["description"]
    assert "two one-sided tests" in fields["test"]["description"] and fields["alpha"]["default"] == 0.05
    assert set(defs["Sample"]["properties"]) == {"file", "key", "seeds"}
    assert "compare" in defs["Check"]["properties"]


# ---------------------------------------------------------------- what the judge records


def test_a_real_effect_passes_with_its_figures_and_a_sentence(tmp_path: Path) -> None:
    write_runs(tmp_path, A_GAIN, B_BASE)
    ev = judged(compare_check(), tmp_path)
    expected = scipy_stats.ttest_rel(A_GAIN, B_BASE, alternative="greater")
    c = ev.comparison
    assert ev.verdict == "pass" and ev.kind == "compare" and c is not None
    assert (c.test, c.claim, c.n, c.n_a, c.n_b, c.paired) == ("paired t-test", "greater", 5, 5, 5, True)
    assert c.p_value == pytest.approx(expected.pvalue) and c.df == 4
    assert c.diff == pytest.approx(np.mean(A_GAIN) - np.mean(B_BASE))
    low, high = expected.confidence_interval(0.95)  # one-sided 95 %: the lower bound of the two-sided 90 %
    assert c.ci[0] == pytest.approx(low) and c.ci_level == pytest.approx(0.90) and high == np.inf
    assert ev.figures["actions help.diff"] == c.diff and ev.figures["actions help.p_value"] == c.p_value
    assert ev.figures["actions help.a[seed=3]"] == A_GAIN[3] and ev.figures["actions help.b"] == c.mean_b
    assert ev.detail == (f"eval.r2: a - b = +0.0402 (means 0.9388 vs 0.8986), 90% CI [{c.ci[0]:+.4g}, "
                         f"{c.ci[1]:+.4g}], p = {c.p_value:.3g} < 0.05 by a paired t-test on 5 pairs: a > b is shown")
    assert set(ev.sources) == {f"runs/{side}-s{s}.json" for side in "ab" for s in range(5)}


def test_no_effect_fails_and_says_what_was_not_shown(tmp_path: Path) -> None:
    write_runs(tmp_path, B_BASE, B_BASE[1:] + B_BASE[:1])  # the control against itself, shuffled
    ev = judged(compare_check(), tmp_path)
    assert ev.verdict == "fail" and ev.comparison is not None and ev.comparison.p_value >= 0.05
    assert ev.detail.endswith(">= 0.05 by a paired t-test on 5 pairs: a > b is not shown")


def test_unpaired_is_welch_and_agrees_with_scipy(tmp_path: Path) -> None:
    write_runs(tmp_path, A_GAIN, B_BASE)
    ev = judged(compare_check(paired=False, test="less"), tmp_path)
    welch = scipy_stats.ttest_ind(A_GAIN, B_BASE, equal_var=False, alternative="less")
    assert ev.verdict == "fail" and ev.comparison is not None
    assert ev.comparison.test == "Welch t-test" and ev.comparison.n == 10
    assert ev.comparison.p_value == pytest.approx(welch.pvalue) and ev.comparison.df == pytest.approx(welch.df)
    assert "by a Welch t-test on 5 + 5 runs: a < b is not shown" in ev.detail


def test_per_side_seeds_and_a_seed_in_the_key(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs/all.json").write_text(json.dumps({"acc": {str(s): 0.6 + 0.01 * s for s in range(10, 14)}}))
    write_runs(tmp_path, [0.0] * 3, [0.50, 0.52, 0.49])
    check = compare_check(seeds=None, paired=False, a={"file": "runs/all.json", "key": "acc.{seed}", "seeds": [10, 11, 12, 13]},
                          b={"file": "runs/b-s{seed}.json", "key": "eval.r2", "seeds": [0, 1, 2]})
    ev = judged(check, tmp_path)
    assert ev.verdict == "pass" and ev.comparison is not None and (ev.comparison.n_a, ev.comparison.n_b) == (4, 3)
    assert ev.detail.startswith("acc.{seed} vs eval.r2: a - b = +0.2117 (means 0.715 vs 0.5033)")
    assert check.read_files() == ["runs/all.json", "runs/b-s0.json", "runs/b-s1.json", "runs/b-s2.json"]


def test_the_interval_and_the_verdict_always_agree() -> None:
    """The (1 - 2 alpha) interval decides each one-sided test at alpha; TOST passes when it lies inside ±margin."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, paired = int(rng.integers(2, 9)), bool(rng.integers(2))
        a, b = rng.normal(0.3, 1, n), rng.normal(0, 1, n if paired else int(rng.integers(2, 9)))
        for claim, margin in (("greater", None), ("less", None), ("noninferior", 0.5), ("equivalent", 1.0)):
            r = compare_samples(a, b, paired=paired, claim=claim, alpha=0.05, margin=margin)
            inside = {"greater": r.ci[0] > 0, "less": r.ci[1] < 0, "noninferior": r.ci[0] > -0.5,
                      "equivalent": -1.0 < r.ci[0] and r.ci[1] < 1.0}[claim]
            assert passed(r) == inside, (claim, paired, a, b, r)


def test_noninferiority_and_equivalence_move_the_null(tmp_path: Path) -> None:
    write_runs(tmp_path, [x - 0.01 for x in B_BASE[:3]] + B_BASE[3:], B_BASE)  # a slightly worse on three seeds
    worse = judged(compare_check(test="noninferior", margin=0.05), tmp_path)
    assert worse.verdict == "pass" and worse.detail.endswith("a > b - 0.05 is shown")
    assert judged(compare_check(test="noninferior", margin=0.001), tmp_path).verdict == "fail"
    same = judged(compare_check(test="equivalent", margin=0.05), tmp_path)
    assert same.verdict == "pass" and same.comparison is not None
    assert same.comparison.test == "TOST with paired t-tests" and "|a - b| < 0.05 is shown" in same.detail
    assert judged(compare_check(test="equivalent", margin=0.005), tmp_path).verdict == "fail"


# ---------------------------------------------------------------- broken inputs: verdicts, never exceptions


def test_a_missing_seed_fails_naming_the_side_seed_and_file(tmp_path: Path) -> None:
    write_runs(tmp_path, A_GAIN, B_BASE)
    (tmp_path / "runs/b-s3.json").unlink()
    ev = judged(compare_check(), tmp_path)
    assert ev.verdict == "fail" and ev.comparison is None
    assert ev.detail == "b (seed 3): metric file runs/b-s3.json not found (did the run that writes it succeed?)"


@pytest.mark.parametrize(("content", "verdict", "message"), [
    ({"eval": {"r3": 0.9}}, "fail", "a (seed 2): key 'eval.r2' not found in runs/a-s2.json; similar keys: eval.r3"),
    ({"eval": {"r2": float("nan")}}, "fail", "a (seed 2): 'eval.r2' in runs/a-s2.json is nan, not a finite number"),
    ({"eval": {"r2": "high"}}, "error", "a (seed 2): 'eval.r2' in runs/a-s2.json is \"high\", not a number"),
])
def test_a_broken_value_is_a_verdict_with_its_reason(tmp_path: Path, content, verdict: str, message: str) -> None:
    write_runs(tmp_path, A_GAIN, B_BASE)
    (tmp_path / "runs/a-s2.json").write_text(json.dumps(content))
    ev = judged(compare_check(), tmp_path)
    assert ev.verdict == verdict and ev.detail.startswith(message)


def test_values_that_do_not_vary_fail_with_the_likely_cause(tmp_path: Path) -> None:
    write_runs(tmp_path, [0.9] * 5, [0.8] * 5)
    for paired in (True, False):
        ev = judged(compare_check(paired=paired), tmp_path)
        assert ev.verdict == "fail" and "no seed-to-seed variation" in ev.detail and "{seed}" in ev.detail
    with pytest.raises(NothingToTest):
        compare_samples([1e308, -1e308], [0.0, 1.0], paired=False, claim="greater", alpha=0.05)


# ---------------------------------------------------------------- the rest of the harness knows the kind


def test_its_files_are_set_aside_and_the_prompt_states_the_claim() -> None:
    check = compare_check(test="noninferior", margin=0.02)
    feature = Feature(id="F", phase=1, title="t", verify=[check])
    assert metric_files(feature) == [f"runs/{side}-s{s}.json" for side in "ab" for s in range(5)]
    assert describe_check(check, 60) == (
        "- actions help: a = runs/a-s{seed}.json key `eval.r2` (seeds [0, 1, 2, 3, 4]) against b = "
        "runs/b-s{seed}.json key `eval.r2` (seeds [0, 1, 2, 3, 4]); a > b - 0.02 must be shown at p < 0.05 "
        "(paired by seed, paired t-test)")


def test_evidence_from_before_check_hashes_never_vouches_for_a_comparison() -> None:
    old = Evidence(check="actions help", kind="metric", verdict="pass", detail="eval.r2 = 0.9 >= 0.5",
                   figures={"eval.r2": 0.9}, duration_s=0.0)
    assert legacy_evidence_matches([old], [compare_check()]) is False
