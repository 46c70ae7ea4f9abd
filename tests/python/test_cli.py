"""The command line: the demo on the embedded scenario runs and reports a sane summary."""

import json
import re
import subprocess
import sys

import intent_engine as ie
from intent_engine.__main__ import main


def test_embedded_scenario_is_valid():
    scn = json.loads(ie.default_scenario_json())
    assert scn["human"]["goal"] in scn["goals"]
    assert scn["robot"]["model"] == "double_integrator" and len(scn["robot"]["state"]) == 4


def test_demo_runs_and_reports(capsys):
    assert main(["demo", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "summary" in out
    median = float(re.search(r"median ([0-9.]+) m", out).group(1))
    assert 0.0 < median < 0.6, out  # 1 s ahead at walking speed, linear-trend GP
    calib = float(re.search(r"calibration\s+([0-9.]+)%", out).group(1))
    assert 60.0 < calib <= 100.0, out


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "intent_engine", "info"], capture_output=True, text=True,
                         check=True)
    assert ie.__version__ in res.stdout
    res = subprocess.run([sys.executable, "-m", "intent_engine"], capture_output=True, text=True)
    assert res.returncode == 2
