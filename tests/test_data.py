"""Datasets: the reference design's layout on disk, pairing errors named before training, reproducible sampling."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from restore_core.data import EpochBatchSampler, PairedFolderDataset, SyntheticDataset, synthesize_dataset
from restore_core.dataset_check import DatasetError, check_dataset
from restore_core.photos import SourceError, bundled_photos, load_folder_images


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "data"
    synthesize_dataset(root, count=6, size=20, seed=3, val_count=2)
    return root


def _read(p):
    with Image.open(p) as im:
        return np.asarray(im)


def test_synth_layout_and_exact_masks(dataset):
    for split, n in (("train", 6), ("val", 2)):
        for kind in ("clean", "corrupted", "mask"):
            files = sorted((dataset / split / kind).iterdir())
            assert [f.name for f in files] == [f"{i:06d}.png" for i in range(n)]
        for i in range(n):
            name = f"{i:06d}.png"
            clean, corrupted = _read(dataset / split / "clean" / name), _read(dataset / split / "corrupted" / name)
            mask = _read(dataset / split / "mask" / name)
            assert clean.shape == corrupted.shape == (20, 20, 3) and mask.shape == (20, 20)
            assert set(np.unique(mask)) <= {0, 255}
            assert np.array_equal(mask == 255, np.any(clean != corrupted, axis=2))
    assert not list(dataset.rglob(".*.tmp")), "temp files left behind"
    assert {k: len(v) for k, v in check_dataset(dataset).items()} == {"train": 6, "val": 2}


def test_synth_is_reproducible_and_refuses_to_overwrite(dataset, tmp_path):
    again = tmp_path / "again"
    synthesize_dataset(again, count=6, size=20, seed=3, val_count=2)
    for f in dataset.rglob("*.png"):
        assert f.read_bytes() == (again / f.relative_to(dataset)).read_bytes(), f
    with pytest.raises(DatasetError, match="already holds images"):
        synthesize_dataset(again, count=6, size=20, seed=4, val_count=2)
    synthesize_dataset(again, count=6, size=20, seed=4, val_count=2, overwrite=True)


def test_synth_from_a_source_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, name in enumerate(["a", "b", "c", "d"]):
        Image.fromarray(bundled_photos()["coffee"][i * 50 : i * 50 + 60, :80]).save(src / f"{name}.png")
    assert [n for n, _ in load_folder_images(src)] == ["a", "b", "c", "d"]
    synthesize_dataset(tmp_path / "ds", count=3, size=16, seed=0, source=src, val_count=1)
    check_dataset(tmp_path / "ds")
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match="broken.jpg"):
        load_folder_images(src)
    with pytest.raises(SourceError, match="no images"):
        load_folder_images(tmp_path / "ds")  # a folder with sub-folders only


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_missing_partner_is_named(dataset, tmp_path):
    root = _copy(dataset, tmp_path / "d")
    (root / "train" / "mask" / "000004.png").unlink()
    with pytest.raises(DatasetError, match=r"train/mask/000004\.png: missing"):
        check_dataset(root)


def test_size_mismatch_is_named(dataset, tmp_path):
    root = _copy(dataset, tmp_path / "d")
    Image.fromarray(np.zeros((18, 20, 3), np.uint8)).save(root / "val" / "corrupted" / "000001.png")
    with pytest.raises(DatasetError, match=r"val/corrupted/000001\.png: size 20x18 differs"):
        check_dataset(root)


def test_unreadable_file_is_named(dataset, tmp_path):
    root = _copy(dataset, tmp_path / "d")
    p = root / "train" / "clean" / "000002.png"
    p.write_bytes(p.read_bytes()[:60])  # truncated
    with pytest.raises(DatasetError, match=r"train/clean/000002\.png: unreadable"):
        check_dataset(root)


def test_every_problem_is_named_on_one_line(dataset, tmp_path):
    root = _copy(dataset, tmp_path / "d")
    (root / "train" / "mask" / "000004.png").unlink()
    Image.fromarray(np.zeros((18, 20, 3), np.uint8)).save(root / "val" / "corrupted" / "000001.png")
    p = root / "train" / "clean" / "000002.png"
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(DatasetError) as err:
        check_dataset(root)
    message = str(err.value)
    assert message.startswith(f"3 problems in {root}: ") and "\n" not in message
    for fragment in ("train/mask/000004.png: missing", "train/clean/000002.png: unreadable",
                     "val/corrupted/000001.png: size 20x18 differs"):
        assert fragment in message


def test_empty_and_missing_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        check_dataset(tmp_path / "nowhere")
    for kind in ("clean", "corrupted", "mask"):
        (tmp_path / "train" / kind).mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"train/clean: no images"):
        check_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"val/clean: missing folder"):
        check_dataset(tmp_path, splits=("val",))


def test_too_small_for_the_crop_is_named(dataset):
    with pytest.raises(DatasetError, match="smaller than the training crop 32"):
        check_dataset(dataset, min_size=32)


def test_paired_dataset_augments_the_three_images_alike(dataset):
    ds = PairedFolderDataset(dataset, "train", crop=12, augment=True, seed=1)
    plain = PairedFolderDataset(dataset, "train")
    for i in range(len(ds)):
        corrupted, clean, mask = ds[i]
        assert corrupted.shape == clean.shape == (3, 12, 12) and mask.shape == (1, 12, 12)
        assert corrupted.dtype == torch.uint8 and mask.dtype == torch.bool
        assert torch.equal(mask[0], (corrupted != clean).any(dim=0))
    c, x, m = plain[0]
    assert c.shape == (3, 20, 20) and torch.equal(m[0], (c != x).any(dim=0))


def test_synthetic_samples_do_not_depend_on_workers():
    imgs = [bundled_photos()["astronaut"], bundled_photos()["coffee"]]
    ds = SyntheticDataset(imgs, 16, length=8, seed=5)
    ds.set_epoch(2)
    batches = []
    for workers in (0, 2):
        sampler = EpochBatchSampler(len(ds), 4, seed=5)
        sampler.set_epoch(2)
        # Spawned, not forked: a fork of a test process that has run ONNX Runtime (another test
        # file on the same pytest worker) can hang in the child, collecting the parent's leftover
        # sessions whose locks were held by threads the child does not have.
        context = "spawn" if workers else None
        batches.append(list(DataLoader(ds, batch_sampler=sampler, num_workers=workers, multiprocessing_context=context)))
    for a, b in zip(*batches):
        for ta, tb in zip(a, b):
            assert torch.equal(ta, tb)
    ds.set_epoch(3)
    assert not torch.equal(ds[0][1], batches[0][0][1][0]) or not torch.equal(ds[1][1], batches[0][0][1][1])
    c, x, m = ds[0]
    assert torch.equal(m[0], (c != x).any(dim=0))


def test_sampler_shards_and_resumes():
    full = EpochBatchSampler(10, batch_size=2, seed=0, rank=0, world_size=1)
    full.set_epoch(1)
    batches = list(full)
    assert len(batches) == 5 and sorted(sum(batches, [])) == list(range(10))
    full.set_epoch(1, skip=3)
    assert list(full) == batches[3:] and len(full) == 2
    r0 = EpochBatchSampler(10, 2, seed=0, rank=0, world_size=2)
    r1 = EpochBatchSampler(10, 2, seed=0, rank=1, world_size=2)
    for s in (r0, r1):
        s.set_epoch(1)
    b0, b1 = list(r0), list(r1)
    assert len(b0) == len(b1) == 3  # 10 samples / (2 x 2) rounded up, padded by wrapping
    assert set(sum(b0, [])) | set(sum(b1, [])) == set(range(10))
    assert all(not set(a) & set(b) for a, b in zip(b0[:2], b1[:2]))
    other = EpochBatchSampler(10, 2, seed=0)
    other.set_epoch(2)
    assert list(other) != batches


def test_config_data_keys_reach_the_training_dataset():
    """`build_datasets` hands the [data] shares and the zoom range to the training set; the
    validation set keeps plain crops."""
    from restore_core.config import Config
    from restore_core.train import build_datasets

    cfg = Config()
    cfg.data.zoom, cfg.data.unpainted, cfg.data.scenes = (0.125, 0.25), 0.5, 0.2
    cfg.data.epoch_samples, cfg.data.val_count = 4, 2
    train_ds, val_ds, _, _ = build_datasets(cfg)
    assert (train_ds.zoom, train_ds.unpainted, train_ds.scenes) == ((0.125, 0.25), 0.5, 0.2)
    assert train_ds.augment and not val_ds.augment
