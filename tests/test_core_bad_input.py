"""restore-train, restore-data synth, restore-validate on hostile input: one `error:` line naming the
option or file, a non-zero exit, no traceback, and nothing of the user's replaced or half-written.

The cases come from a hostile-input sweep (its numbers in the test names' docstrings)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from restore_core.checkpoint import load_model, save_release
from restore_core.cli import data_cli, train_cli, validate_cli
from restore_core.data import synthesize_dataset
from restore_core.img_utils import normalize
from restore_core.validate import validate
from tests.conftest import make_tiny_model
from tests.test_core_cli import TINY_ARGS, _one_line_error, _run

ONE_STEP = ["--max-steps", "1", "--epochs", "1", *TINY_ARGS]


def _ends_in_one_error(result, *needles):
    """A run that started (its progress lines printed) and then stopped with one error line."""
    assert result.exit_code == 1, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert [x for x in lines if x.startswith("error: ")] == lines[-1:], result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[-1], (n, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "ds"
    synthesize_dataset(root, count=2, size=16, seed=1, val_count=2)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder holding a one-step run: last.ckpt, best.ckpt, best.safetensors, train_log.jsonl."""
    run = tmp_path_factory.mktemp("trained") / "run"
    r = _run(train_cli, ["-o", str(run), *ONE_STEP])
    assert r.exit_code == 0, r.output
    return run


def _copy_run(trained, to):
    to.mkdir()
    for p in trained.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


# ---------------------------------------------------------------------------------------------
# restore-train's output folder and report (sweep #1, #2)


def test_train_refuses_a_folder_holding_a_run_without_overwrite(trained, tmp_path):
    """#1: a second fresh run into a run's folder replaced its checkpoints and mixed two logs."""
    run = _copy_run(trained, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    line = _one_line_error(_run(train_cli, ["-o", str(run), *ONE_STEP]), "--output", str(run), "--overwrite")
    assert "best.ckpt" in line and "last.ckpt" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # A user's own file of one of those names is refused the same way.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "best.ckpt").write_bytes(b"my model")
    _one_line_error(_run(train_cli, ["-o", str(mine), *ONE_STEP]), "--output", "best.ckpt")
    assert (mine / "best.ckpt").read_bytes() == b"my model"
    # --overwrite starts a new run there: its log holds that run only.
    r = _run(train_cli, ["-o", str(run), "--overwrite", *ONE_STEP])
    assert r.exit_code == 0, r.output
    records = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert sum(rec["type"] == "start" for rec in records) == 1


def test_train_resume_into_its_own_folder_needs_no_overwrite(trained, tmp_path):
    run = _copy_run(trained, tmp_path / "run")
    r = _run(train_cli, ["--resume", str(run / "last.ckpt"), "-o", str(run), "--max-steps", "2", "--threads", "1",
                         "-q"])
    assert r.exit_code == 0, r.output
    assert "resumed from" in r.output and "after 2 steps" in r.output


def test_train_report_never_replaces_a_checkpoint_or_a_users_file(trained, tmp_path):
    """#2: --report run/last.ckpt turned the resume checkpoint into JSON; any file was replaced."""
    run = _copy_run(trained, tmp_path / "run")
    last = (run / "last.ckpt").read_bytes()
    for extra in ([], ["--overwrite"]):
        _one_line_error(_run(train_cli, ["--resume", str(run / "last.ckpt"), "-o", str(run), "--max-steps", "2", "-q",
                                         "--report", str(run / "last.ckpt"), *extra]),
                        "--report", "last.ckpt", "is also")
    assert (run / "last.ckpt").read_bytes() == last
    keep = tmp_path / "keep.json"
    keep.write_text('{"mine": 1}\n')
    _one_line_error(_run(train_cli, ["-o", str(tmp_path / "r2"), "--report", str(keep), *ONE_STEP]),
                    "--report", "keep.json", "already exists", "--overwrite")
    assert keep.read_text() == '{"mine": 1}\n' and not (tmp_path / "r2").exists()
    config = tmp_path / "tiny.toml"
    config.write_text("[model]\nbase_channels = 4\ndepth = 2\n")
    _one_line_error(_run(train_cli, ["--config", str(config), "-o", str(tmp_path / "r3"), "--report", str(config),
                                     "--overwrite", *ONE_STEP]), "--report", "an input")
    assert config.read_text().startswith("[model]")


def test_train_report_of_an_earlier_run_is_replaced(tmp_path):
    report = tmp_path / "summary.json"
    r = _run(train_cli, ["-o", str(tmp_path / "a"), "--report", str(report), *ONE_STEP])
    assert r.exit_code == 0, r.output
    first = json.loads(report.read_text())
    r = _run(train_cli, ["-o", str(tmp_path / "b"), "--report", str(report), *ONE_STEP])
    assert r.exit_code == 0, r.output
    assert json.loads(report.read_text())["paths"]["last"] != first["paths"]["last"]


# ---------------------------------------------------------------------------------------------
# restore-validate's output folder (sweep #3)


def test_validate_refuses_a_folder_holding_results(tiny_release, dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("my figures\n")
    args = ["--model", str(tiny_release), "--data", str(dataset), "-o", str(out), "--device", "cpu"]
    _one_line_error(_run(validate_cli, args), "--output", "metrics.json", "--overwrite")
    assert (out / "metrics.json").read_text() == "my figures\n" and not (out / "binary_masks").exists()
    r = _run(validate_cli, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "metrics.json").read_text())["samples"] == 2


# ---------------------------------------------------------------------------------------------
# Places that cannot be written (sweep #6) and empty paths (sweep #13), said before any work


@pytest.fixture
def blocked(tmp_path):
    """A path under a file: no folder can be made there, even by root (which ignores modes)."""
    f = tmp_path / "a_file"
    f.write_text("x")
    return f


def test_unwritable_places_are_one_line_before_any_work(blocked, tiny_release, dataset, tmp_path, monkeypatch):
    import restore_core.train as train_module
    import restore_core.validate as validate_module

    def never(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(train_module, "_train", never)
    monkeypatch.setattr(validate_module, "load_model", never)
    _one_line_error(_run(train_cli, ["-o", str(blocked / "run"), *ONE_STEP]), "--output", "cannot write there")
    _one_line_error(_run(train_cli, ["-o", str(tmp_path / "run"), "--report", str(blocked / "r.json"), *ONE_STEP]),
                    "--report", "cannot write there")
    _one_line_error(_run(validate_cli, ["--model", str(tiny_release), "--data", str(dataset), "-o",
                                        str(blocked / "v"), "--device", "cpu"]), "--output", "cannot write there")
    _one_line_error(_run(data_cli, ["synth", str(blocked / "s"), "--count", "2", "--size", "16"]),
                    "OUTPUT", "cannot write there")


def _empty_refused(result, option):
    # an empty name is a usage error, said by click before the command runs (restore_toolkit.console.NamedPath)
    assert result.exit_code == 2 and f"{option}': empty; name" in result.output, result.output


def test_empty_output_paths_are_refused(tiny_release, dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what an empty path used to mean: nothing may appear here
    _empty_refused(_run(train_cli, ["-o", "", *ONE_STEP]), "--output")
    _empty_refused(_run(validate_cli, ["--model", str(tiny_release), "--data", str(dataset), "-o", "",
                                        "--device", "cpu"]), "--output")
    _empty_refused(_run(data_cli, ["synth", "", "--count", "2", "--size", "16"]), "OUTPUT")
    _empty_refused(_run(train_cli, ["-o", "run", "--report", "", *ONE_STEP]), "--report")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# restore-validate scores the deployed pipeline (sweep #11)


def test_validate_scores_the_release_mask_opening(dataset, tmp_path):
    model = make_tiny_model(seed=3)
    release = tmp_path / "opened.safetensors"
    save_release(release, model, mask_opening=3)
    pipe = load_model(release, device="cpu").pipeline()
    assert pipe.mask_opening == 3
    report = validate(release, dataset, tmp_path / "out", device="cpu")
    differs = False
    tp = fp = fn = 0
    for name in sorted(report["per_image"]):
        with Image.open(dataset / "val" / "corrupted" / f"{name}.png") as im:
            corrupted = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None]
        with Image.open(dataset / "val" / "mask" / f"{name}.png") as im:
            true = np.asarray(im) > 0
        with torch.no_grad():
            _, prob, _ = pipe.forward_tensor(normalize(corrupted))
        deployed = pipe.binarize(prob)[0, 0].numpy()
        differs |= not np.array_equal(deployed, (prob >= pipe.threshold)[0, 0].numpy())
        with Image.open(tmp_path / "out" / "binary_masks" / f"{name}.png") as im:
            assert np.array_equal(np.asarray(im) == 255, deployed), name
        tp, fp, fn = tp + (deployed & true).sum(), fp + (deployed & ~true).sum(), fn + (~deployed & true).sum()
    assert differs, "the opening should change the mask of the tiny model somewhere"
    assert report["metrics"]["mask_iou"] == pytest.approx(tp / (tp + fp + fn))
    assert report["model"]["mask_opening"] == 3


# ---------------------------------------------------------------------------------------------
# Config files that are not text (sweep #9)


def test_config_that_is_not_utf8_is_one_line(tmp_path):
    png = tmp_path / "png_as.toml"
    Image.new("RGB", (4, 4), (200, 10, 10)).save(png, format="PNG")
    _one_line_error(_run(train_cli, ["--config", str(png)]), "png_as.toml", "not a TOML text file")
    _one_line_error(_run(data_cli, ["synth", str(tmp_path / "s"), "--count", "2", "--size", "16", "--config",
                                    str(png)]), "png_as.toml", "not a TOML text file")
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------------------------------
# A diverging run (sweep #7)


@pytest.mark.parametrize("args", [["--set", "train.lr=inf"], ["--lr", "inf"]])
def test_infinite_lr_is_refused_up_front(args, tmp_path):
    _one_line_error(_run(train_cli, [*args, "-o", str(tmp_path / "run"), *ONE_STEP]), "train.lr", "inf")
    assert not (tmp_path / "run").exists()


def test_non_finite_weights_stop_at_validation_in_one_line(tmp_path, monkeypatch):
    """Weights that went non-finite in a step whose loss was finite (--lr 1e10) crashed validation."""
    import restore_core.train as train_module

    real = train_module._train_step

    def diverging(run, batch, epoch):
        out = real(run, batch, epoch)
        with torch.no_grad():
            for p in run.model.parameters():
                p.fill_(float("inf"))
        return out

    monkeypatch.setattr(train_module, "_train_step", diverging)
    run = tmp_path / "run"
    line = _ends_in_one_error(_run(train_cli, ["-o", str(run), *ONE_STEP]), "NaN or infinite", "at step 1 (epoch 1)")
    assert "stopped without writing a checkpoint" in line
    assert not list(run.glob("*.ckpt")) and not list(run.glob("*.safetensors"))


def test_huge_lr_stops_in_one_line(tmp_path):
    """--lr 1e10: the step's loss stays finite, the weights do not; validation crashed with a traceback."""
    r = _run(train_cli, ["--lr", "1e10", "-o", str(tmp_path / "run"), *ONE_STEP])
    _ends_in_one_error(r, "validation outputs became NaN or infinite at step 1")


def test_validate_of_a_diverged_model_is_one_line(dataset, tmp_path):
    model = make_tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    release = tmp_path / "diverged.safetensors"
    save_release(release, model)
    _one_line_error(_run(validate_cli, ["--model", str(release), "--data", str(dataset), "-o", str(tmp_path / "o"),
                                        "--device", "cpu"]), "diverged.safetensors", "not finite")


# ---------------------------------------------------------------------------------------------
# Numbers out of range (sweep #10)


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_seed_out_of_range_is_a_usage_error(seed, tmp_path):
    for cmd, args in ((train_cli, ["-o", str(tmp_path / "run")]),
                      (data_cli, ["synth", str(tmp_path / "s"), "--count", "2", "--size", "16"])):
        r = _run(cmd, [*args, "--seed", seed])
        assert r.exit_code == 2 and "--seed" in r.output and "Traceback" not in r.output, r.output
    _one_line_error(_run(train_cli, ["--set", f"train.seed={seed}", "-o", str(tmp_path / "run")]), "train.seed")
    assert not (tmp_path / "run").exists() and not (tmp_path / "s").exists()


def test_threads_above_the_usable_cpus_are_lowered_with_a_note(tmp_path, monkeypatch):
    from restore_toolkit.console import available_cpus as usable_cpus

    asked, real = [], torch.set_num_threads

    def record(n):
        asked.append(n)
        real(min(n, usable_cpus()))  # never the 100000 threads that crash OpenBLAS, fixed or not

    monkeypatch.setattr(torch, "set_num_threads", record)
    args = [*ONE_STEP[:-2], "--threads", "100000"]  # TINY_ARGS ends with --threads 1
    assert ONE_STEP[-2:] == ["--threads", "1"]
    r = _run(train_cli, ["-o", str(tmp_path / "run"), *args])
    assert r.exit_code == 0, r.output
    assert f"note: --threads 100000 lowered to {usable_cpus()}" in r.output
    assert asked and max(asked) <= usable_cpus()


def test_validate_threshold_nan_is_a_usage_error(tiny_release, dataset, tmp_path):
    r = _run(validate_cli, ["--model", str(tiny_release), "--data", str(dataset), "-o", str(tmp_path / "o"),
                            "--threshold", "nan"])
    assert r.exit_code == 2 and "--threshold" in r.output and "finite" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# Ctrl-C (sweep #14)


def test_ctrl_c_before_the_first_checkpoint_says_none_was_written(tmp_path, monkeypatch):
    import restore_core.train as train_module

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    run = tmp_path / "run"
    r = _run(train_cli, ["-o", str(run), *ONE_STEP])
    assert r.exit_code == 130, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert lines == [f"interrupted: no checkpoint was written yet in {run}; nothing to resume"], r.output
    assert not run.exists()


def test_ctrl_c_after_a_checkpoint_names_the_real_folder(tmp_path, monkeypatch):
    import restore_core.train as train_module

    real = train_module.train

    def interrupted_after_one_step(cfg):
        real(cfg)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted_after_one_step)
    run = tmp_path / "run"
    r = _run(train_cli, ["-o", str(run), *ONE_STEP])
    assert r.exit_code == 130, r.output
    assert f"restore-train --resume {run / 'last.ckpt'} continues" in r.output and "OUTPUT" not in r.output


def test_resume_from_a_checkpoint_without_a_runs_state_is_one_line(tmp_path):
    """A checkpoint of weights alone (an export's input, not a run's last.ckpt): a KeyError before."""
    from dataclasses import asdict

    from restore_core.checkpoint import save_checkpoint

    model = make_tiny_model()
    bare = tmp_path / "bare.ckpt"
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(model.cfg), "step": 1}, bare)
    config = tmp_path / "c.toml"
    config.write_text("")  # the run's settings from here and the command line: the checkpoint holds none
    line = _one_line_error(_run(train_cli, ["--config", str(config), "--resume", str(bare), "-o", str(tmp_path / "run"),
                                            *ONE_STEP]))
    assert line == (f"error: {bare}: not a checkpoint a run can resume from (no optimizer, scheduler, scaler, "
                    "progress, rng entry); --init starts a new run from its weights")


def test_synth_stopped_inside_a_sample_leaves_none_of_its_files(tmp_path, monkeypatch):
    # Ctrl-C between a sample's files left a clean image without its mask
    import restore_core.data as data

    saved = []

    def save(pixels, path, durable=False):
        if len(saved) == 4:  # the second sample's second file
            raise KeyboardInterrupt
        saved.append(path)
        real_save(pixels, path)

    real_save = data.atomic_save_png
    monkeypatch.setattr(data, "atomic_save_png", save)
    with pytest.raises(KeyboardInterrupt):
        synthesize_dataset(tmp_path / "d", count=3, size=16, seed=1, val_count=1)
    names = {folder: sorted(p.name for p in (tmp_path / "d" / "train" / folder).glob("*.png"))
             for folder in ("clean", "corrupted", "mask")}
    assert names == {"clean": ["000000.png"], "corrupted": ["000000.png"], "mask": ["000000.png"]}
