from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.plan.prd import PRDError, import_snarktank, json_schema, load_prd, parse_prd, prd_warnings
from harness.project import Project


def problems_of(data) -> list[str]:
    with pytest.raises(PRDError) as err:
        parse_prd(data)
    return err.value.problems


def test_valid_prd_loads_and_orders_by_dependency(prd_dict, tmp_path: Path):
    prd_dict["features"].reverse()  # FEAT-2 first in the file, but it depends on FEAT-1
    path = tmp_path / "PRD.json"
    path.write_text(json.dumps(prd_dict))
    prd = load_prd(path)
    assert [f.id for f in prd.features_in_phase(1)] == ["FEAT-1", "FEAT-2"]
    assert prd.upstream("FEAT-2") == {"FEAT-1"}
    assert prd.features_in_phase(2) == []


def test_malformed_json_reports_line_and_column(tmp_path: Path):
    path = tmp_path / "PRD.json"
    path.write_text('{\n  "version": 1,\n  "project": "x",,\n}')
    with pytest.raises(PRDError) as err:
        load_prd(path)
    assert "line 3, column 18" in str(err.value)


def test_bad_metric_op_has_json_path(prd_dict):
    prd_dict["features"][0]["verify"][1]["metric"]["op"] = "=>"
    assert any(p.startswith("features[0].verify[1].metric.op:") for p in problems_of(prd_dict))


def test_unknown_field_suggests_the_right_one(prd_dict):
    prd_dict["features"][1]["verfy"] = prd_dict["features"][1].pop("verify")
    (problem,) = problems_of(prd_dict)
    assert problem.startswith("features[1].verfy: unknown field; did you mean 'verify'?")


def test_missing_fields_and_metric_without_file_or_key(prd_dict):
    del prd_dict["project"]
    prd_dict["features"][0]["verify"][1]["metric"] = {"op": ">=", "value": 1}
    problems = problems_of(prd_dict)
    assert "project: required field is missing" in problems
    assert "features[0].verify[1].metric.file: required field is missing" in problems
    assert "features[0].verify[1].metric.key: required field is missing" in problems


def test_every_cross_reference_problem_is_listed_at_once(prd_dict):
    prd_dict["features"].append({"id": "FEAT-1", "phase": 1, "title": "dup"})
    prd_dict["features"].append({"id": "FEAT-9", "phase": 7, "title": "lost", "depends_on": ["FEAT-77"]})
    problems = problems_of(prd_dict)
    assert any(p.startswith("features[2].id: duplicate feature id 'FEAT-1'") for p in problems)
    assert any(p.startswith("features[3].phase: phase 7 does not exist") for p in problems)
    assert any(p.startswith("features[3].depends_on[0]: unknown feature 'FEAT-77'") for p in problems)


def test_dependency_cycle_is_reported_with_its_path(prd_dict):
    prd_dict["features"][0]["depends_on"] = ["FEAT-2"]
    (problem,) = problems_of(prd_dict)
    assert problem in ("features: dependency cycle FEAT-1 -> FEAT-2 -> FEAT-1",
                       "features: dependency cycle FEAT-2 -> FEAT-1 -> FEAT-2")


def test_dependency_on_a_later_phase_is_refused(prd_dict):
    prd_dict["features"].append({"id": "FEAT-3", "phase": 2, "title": "later"})
    prd_dict["features"][1]["depends_on"] = ["FEAT-3"]
    (problem,) = problems_of(prd_dict)
    assert problem.startswith("features[1].depends_on[0]: 'FEAT-3' is in phase 2")


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ({"name": "c", "run": "x", "metric": {"file": "f", "key": "k", "op": ">", "value": 1}}, "exactly one of"),
        ({"name": "c"}, "exactly one of"),
        ({"name": "c", "run": "train --seed 1", "seeds": [0, 1]}, "no {seed} placeholder"),
        ({"name": "c", "run": "train --seed {seed}"}, "has no 'seeds' list"),
        ({"name": "c", "run": "train {seed}", "seeds": [1], "agg": "mean"}, "'agg' applies only"),
        ({"name": "c", "run": "train {seed}", "seeds": [1, 1]}, "repeat"),
    ],
)
def test_check_shape_errors(prd_dict, check, expected):
    prd_dict["features"][1]["verify"] = [check]
    (problem,) = problems_of(prd_dict)
    assert problem.startswith("features[1].verify[0]") and expected in problem


def test_write_passes_keeps_other_content(prd_repo: Path):
    path = prd_repo / "PRD.json"
    before = json.loads(path.read_text())
    Project.open(prd_repo).write_passes({"FEAT-2": True})
    after = json.loads(path.read_text())
    assert after["features"][1]["passes"] is True
    after["features"][1].pop("passes")
    assert after == before and list(after) == list(before)


def test_import_snarktank_orders_by_priority_and_distrusts_passes():
    data = {
        "project": "MyApp",
        "branchName": "ralph/task-priority",
        "description": "Task priority",
        "userStories": [
            {"id": "US-002", "title": "second", "acceptanceCriteria": ["b"], "priority": 2, "passes": True, "notes": ""},
            {"id": "US-001", "title": "first", "description": "d", "acceptanceCriteria": ["a"], "priority": 1},
        ],
    }
    prd = import_snarktank(data)
    assert [f.id for f in prd.features] == ["US-001", "US-002"]
    assert [p.id for p in prd.phases] == [1] and prd.phases[0].name == "ralph/task-priority"
    assert prd.features[1].passes is False and "self-reported" in prd.features[1].notes
    assert prd.features[0].acceptance == ["a"]
    assert any("no 'verify' checks" in w for w in prd_warnings(prd))


def test_import_snarktank_bad_input():
    with pytest.raises(PRDError) as err:
        import_snarktank({"project": "x", "userStories": [{"id": "US-1"}]})
    assert "userStories[0].title" in str(err.value)


def test_json_schema_describes_checks():
    schema = json_schema()
    assert schema["title"].startswith("ralph PRD.json")
    assert set(schema["$defs"]["Check"]["properties"]) >= {"run", "metric", "seeds", "agg", "timeout_s"}
