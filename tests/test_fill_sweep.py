"""benchmarks.fill_sweep: the even fill's (clear, blend) tried on the selection photos, and the rule
that chooses one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.fill_sweep import choose

NETWORK = (0, 1.0)


def test_the_rule_takes_the_best_mean_gain_over_kinds_that_makes_nothing_worse():
    inputs = {"png": [20.0, 20.0], "jpeg": [20.0]}
    table = {
        "png": {NETWORK: [30.0, 30.0], (0, 0.5): [32.0, 32.0], (1, 0.5): [31.0, 31.0], (2, 0.5): [40.0, 19.0]},
        "jpeg": {NETWORK: [30.0], (0, 0.5): [29.0], (1, 0.5): [30.6], (2, 0.5): [40.0]},
    }
    # (0, 0.5): gains +2 on png, -1 on jpeg: mean +0.5. (1, 0.5): +1 and +0.6: mean +0.8, chosen.
    # (2, 0.5) gains most on average but makes a png file worse than its input (19 < 20): excluded.
    assert choose(table, inputs) == (1, 0.5)
    # Each kind weighs the same: four more png files at +2 do not outvote the jpeg file.
    table["png"] = {k: v * 3 for k, v in table["png"].items()}
    inputs["png"] = inputs["png"] * 3
    assert choose(table, inputs) == (1, 0.5)
    # Nothing left when every pair makes a file worse.
    inputs["jpeg"] = [35.0]
    assert choose(table, inputs) is None


def test_the_command_scores_each_pair_against_the_network_alone(tmp_path):
    out = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "-m", "benchmarks.fill_sweep", "-o", str(out), "--per-photo", "1",
                           "--formats", "png", "--clear", "0,2", "--blend", "0.5"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert report["photos"] == "selection" and report["command"].startswith("python -m benchmarks.fill_sweep")
    pairs = [(r["clear"], r["blend"]) for r in report["rows"]]
    assert pairs == [NETWORK, (0, 0.5), (2, 0.5)]
    network = report["rows"][0]
    assert network["gain_db"] == {"png": 0.0} and network["psnr"]["png"] > 20
    for r in report["rows"][1:]:  # the gain is the pair's PSNR less the network's, per kind
        assert r["gain_db"]["png"] == pytest.approx(r["psnr"]["png"] - network["psnr"]["png"])
    assert not np.isclose(report["rows"][1]["psnr"]["png"], report["rows"][2]["psnr"]["png"])  # the rim matters
    # Then each tolerance of the paint grow at the chosen pair, against not growing (0), with its mask IoU.
    grown = report["tolerance_rows"]
    assert [r["tolerance"] for r in grown][:2] == [0, 4] and grown[0]["gain_db"] == {"png": 0.0}
    assert all(0.0 <= r["mask_iou"]["png"] <= 1.0 for r in grown)
    assert report["chosen"]["tolerance"] in [r["tolerance"] for r in grown]
    oracle = report["given_true_mask"]["png"]  # the smooth fill and Telea, each given the true mask
    assert oracle["smooth_fill"] > 25 and oracle["telea"] > 25
    text = (tmp_path / "sweep.md").read_text()
    assert "Chosen:" in text and "| smooth fill alone |" in text


def test_an_unknown_format_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.fill_sweep", "-o", str(tmp_path / "x"),
                           "--formats", "clean-png"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown painted format 'clean-png'" in done.stderr
