"""The command line: the demo on the embedded scenario runs and reports a sane summary."""

import json
import re
import subprocess
import sys

import pytest

import intent_engine as ie
from intent_engine.__main__ import main


def test_embedded_scenario_is_valid():
    scn = json.loads(ie.default_scenario_json())
    assert scn["human"]["legs"] and all(leg["goal"] in scn["goals"] for leg in scn["human"]["legs"])
    assert scn["robot"]["model"] == "double_integrator" and len(scn["robot"]["state"]) == 4


def test_demo_runs_and_reports(capsys, tmp_path):
    assert main(["demo", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "summary" in out
    acc = float(re.search(r"goal accuracy\s+([0-9.]+)%", out).group(1))
    assert 80.0 < acc <= 100.0, out
    # Safety over the scenario is checked with load-independent budgets in test_intent.py;
    # here (real budgets, a possibly loaded machine) the report must only be well formed.
    assert re.search(r"\(minimum allowed [0-9.]+ m, \d+ steps below\)", out), out
    assert re.search(r"total\s+[0-9.]+\s+[0-9.]+", out), out
    assert (tmp_path / "intent_demo.svg").read_text().startswith("<svg")
    assert (tmp_path / "intent_demo.csv").read_text().startswith("t,human_x")


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "intent_engine", "info"], capture_output=True, text=True,
                         check=True)
    assert ie.__version__ in res.stdout
    res = subprocess.run([sys.executable, "-m", "intent_engine"], capture_output=True, text=True)
    assert res.returncode == 2


def test_a_misspelt_scenario_setting_is_an_error_not_its_default():
    scn = json.loads(ie.default_scenario_json())
    scn["human"]["curvture"] = scn["human"].pop("curvature")
    with pytest.raises(ValueError, match="unknown field `curvture`"):
        ie.IntentEngine.from_scenario_json(json.dumps(scn))
