"""The paint-then-save generator (`restore_core.degrade`) and the three groups of photo sources."""

import io

import numpy as np
import pytest
from PIL import Image

from restore_core.data import SyntheticDataset
from restore_core.degrade import DegradeConfig, damage_mask, decode, degrade_pair, encode_jpeg, source_side
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng


def _photo(size=64, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 3, y * 3, (x + y) * 2], axis=2).astype(np.float64)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def test_damage_mask_is_shapes_plus_changes_above_tolerance():
    clean = np.full((4, 4, 3), 100, np.uint8)
    painted = clean.copy()
    painted[0, 0] = [100, 100, 109]  # 9 levels in one channel: damage at tolerance 8
    painted[0, 1] = [108, 92, 100]   # 8 levels: not damage
    shapes = np.zeros((4, 4), bool)
    shapes[3, 3] = True  # painted with the same colour: still the shape
    m = damage_mask(painted, clean, shapes, 8)
    assert m.sum() == 2 and m[0, 0] and m[3, 3] and not m[0, 1]


def test_jpeg_chain_matches_a_real_file_saved_after_painting():
    # The chain with only JPEG on equals painting, saving the file with Pillow and decoding it.
    cfg = DegradeConfig(resize=0, noise=0, webp=0, twice=0, quality=(80, 80), subsampling=(1, 0, 0))
    clean = _photo()
    painted, shapes = corrupt(clean, sample_rng(1, 0), CorruptionConfig(count=(2, 2), size=(0.2, 0.3)))
    c, p, m = degrade_pair(clean, painted, shapes, 64, np.random.default_rng(0), cfg)
    buf = io.BytesIO()
    Image.fromarray(painted).save(buf, format="JPEG", quality=80, subsampling=2)
    assert np.array_equal(p, np.asarray(Image.open(buf).convert("RGB")))
    assert np.array_equal(c, decode(encode_jpeg(clean, 80, "4:2:0")))
    # Ringing and colour bleed reach past the painted shapes, and the mask follows them.
    assert (m & ~shapes).any() and (m | ~shapes).all()
    assert np.abs(p.astype(int) - c.astype(int)).max(axis=2)[~m].max() <= cfg.tolerance


def test_chroma_subsampling_bleeds_colour_past_the_shape():
    from restore_core.photos import bundled_photos

    clean = np.ascontiguousarray(bundled_photos()["astronaut"][100:196, 100:196])  # (96, 96, 3)
    for seed in range(3):
        painted, shapes = corrupt(clean, sample_rng(2, seed), CorruptionConfig(count=(3, 3), size=(0.2, 0.3)))
        halo = {}
        for sub in ("4:2:0", "4:4:4"):
            c, p = decode(encode_jpeg(clean, 95, sub)), decode(encode_jpeg(painted, 95, sub))
            halo[sub] = int((damage_mask(p, c, shapes, 8) & ~shapes).sum())
        assert halo["4:2:0"] > 1.5 * halo["4:4:4"] > 0


def test_resize_after_painting_ends_at_the_training_size():
    cfg = DegradeConfig(resize=1.0, scale=(0.5, 0.5), noise=0, webp=0, twice=0)
    rng = np.random.default_rng(3)
    side = source_side(32, rng, cfg)
    assert side == 64
    clean = _photo(side)
    painted, shapes = corrupt(clean, sample_rng(3, 1), CorruptionConfig(count=(1, 1), size=(0.4, 0.4)))
    c, p, m = degrade_pair(clean, painted, shapes, 32, rng, cfg)
    assert c.shape == p.shape == (32, 32, 3) and m.shape == (32, 32)
    assert 0.5 < m.sum() / max(1, shapes.sum() / 4) < 2.5  # the shape, a quarter of its area


def test_noise_is_the_same_on_both_images_so_only_the_paint_differs():
    cfg = DegradeConfig(resize=0, noise=1.0, sigma=(4, 4), webp=0, quality=(100, 100), subsampling=(0, 0, 1), twice=0)
    clean = _photo()
    c, p, m = degrade_pair(clean, clean.copy(), np.zeros((64, 64), bool), 64, np.random.default_rng(4), cfg)
    assert np.array_equal(c, p) and not m.any() and not np.array_equal(c, clean)


@pytest.mark.parametrize("bad", [dict(noise=1.5), dict(scale=(0.0, 0.5)), dict(quality=(90, 80)),
                                 dict(subsampling=(0, 0, 0)), dict(tolerance=300)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="degrade"):
        DegradeConfig(**bad)


def test_synthetic_samples_mix_saved_exact_and_unpainted():
    photos = [_photo(96, s) for s in range(3)]
    ds = SyntheticDataset(photos, 32, 60, seed=5, degraded=0.5, unpainted=0.3,
                          corruption=CorruptionConfig(count=(1, 3), size=(0.2, 0.4)))
    empty = exact = 0
    for i in range(len(ds)):
        corrupted, clean, mask = ds.sample(i)
        assert corrupted.shape == clean.shape == (32, 32, 3) and mask.shape == (32, 32)
        if not mask.any():
            empty += 1
            # Nothing painted: whatever the save did, it did to both.
            assert np.array_equal(corrupted, clean)
        elif np.array_equal(corrupted[~mask], clean[~mask]) and np.array_equal(mask, np.any(corrupted != clean, axis=2)):
            exact += 1
    assert 8 <= empty <= 30 and exact >= 8
    # The same index gives the same sample (workers, ranks and --resume rely on it).
    assert all(np.array_equal(a, b) for a, b in zip(ds.sample(7), ds.sample(7)))


def test_configs_without_the_new_shares_draw_the_samples_they_always_did():
    photos = [_photo(96, s) for s in range(2)]
    old = SyntheticDataset(photos, 32, 4, seed=1, jpeg=0.5)
    new = SyntheticDataset(photos, 32, 4, seed=1, jpeg=0.5, degraded=0.0, unpainted=0.0)
    for i in range(4):
        assert all(np.array_equal(a, b) for a, b in zip(old.sample(i), new.sample(i)))


def test_the_three_groups_of_photo_sources_share_no_photo():
    from restore_core.data import source_images
    from restore_core.heldout import EVALUATION_PHOTOS, PACKAGE_PHOTOS, SELECTION_PHOTOS, heldout_photos
    from restore_core.photos import BUNDLED, BUNDLED_GREY, BUNDLED_VAL

    train_names = {n for n, _ in source_images(None, grey=True)[0]}
    assert set(BUNDLED_VAL) <= set(SELECTION_PHOTOS) and not train_names & set(SELECTION_PHOTOS)
    assert train_names == (set(BUNDLED) | set(BUNDLED_GREY)) - set(BUNDLED_VAL)
    assert not set(EVALUATION_PHOTOS) & (train_names | set(SELECTION_PHOTOS))
    # The selection photos beyond scikit-image's come from packages no other group reads.
    assert set(SELECTION_PHOTOS) - set(BUNDLED_VAL) == set(PACKAGE_PHOTOS)
    assert not {pkg for pkg, _, _ in PACKAGE_PHOTOS.values()} & {"skimage", "sklearn", "matplotlib"}

    # By content too: a photo shipped twice under two names (scikit-image's `cat` is `chelsea`)
    # must not cross groups. Compare 16x16 thumbnails.
    def thumbs(images):
        return [np.asarray(Image.fromarray(a).convert("L").resize((16, 16)), np.float64) for a in images]

    groups = {"training": thumbs(a for _, a in source_images(None, grey=True)[0]),
              "selection": thumbs(heldout_photos("selection").values()),
              "evaluation": thumbs(heldout_photos("evaluation").values())}
    assert len(groups["evaluation"]) == 3 and len(groups["selection"]) == 5
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for x in groups[a]:
                for y in groups[b]:
                    assert np.abs(x - y).mean() > 10, f"a {a} photo looks like a {b} photo"


def test_photos_added_to_a_group_leave_the_earlier_draws_as_they_were(monkeypatch):
    import restore_core.heldout as heldout

    now = heldout.heldout_set(2, photos="selection")
    first_two = {n: a for n, a in list(heldout.heldout_photos("selection").items())[:2]}
    monkeypatch.setattr(heldout, "heldout_photos", lambda which="evaluation": first_two)
    before = heldout.heldout_set(2, photos="selection")
    assert [c.name for c in now[:4]] == [c.name for c in before] == ["chelsea_00", "chelsea_01", "rocket_00", "rocket_01"]
    assert all(np.array_equal(a.corrupted, b.corrupted) and np.array_equal(a.mask, b.mask) for a, b in zip(now, before))


def test_a_package_photo_that_is_not_the_pinned_one_is_refused(monkeypatch, tmp_path):
    import restore_core.heldout as heldout

    assert heldout.package_photo("luispedro").shape == (377, 300, 3)
    monkeypatch.setitem(heldout.PACKAGE_PHOTOS, "luispedro", ("mahotas", "demos/data/luispedro.jpg", "0" * 64))
    with pytest.raises(heldout.MissingPhotosError, match="luispedro.jpg: not the selection photo 'luispedro'"):
        heldout.package_photo("luispedro")
    monkeypatch.setitem(heldout.PACKAGE_PHOTOS, "luispedro", ("no_such_package_here", "x.jpg", "0" * 64))
    with pytest.raises(heldout.MissingPhotosError, match="needs the package no_such_package_here"):
        heldout.package_photo("luispedro")


def test_choices_read_only_the_selection_photos(monkeypatch, tmp_path):
    import restore_core.heldout as heldout
    from export import int8
    from restore_core.calibrate import calibration_cases

    assert {c.source for c in calibration_cases(seeds=(1,), per_photo=1)} == set(heldout.SELECTION_PHOTOS)

    # The int8 search scores its candidates on the set it is handed: record which.
    asked = []

    def recording_set(per_photo, seed=heldout.HELDOUT_SEED, photos="evaluation"):
        asked.append(photos)
        raise RuntimeError("stop here")

    monkeypatch.setattr(heldout, "heldout_set", recording_set)
    monkeypatch.setattr(int8, "calibration_images", lambda count: [])
    with pytest.raises(RuntimeError, match="stop here"):
        int8.quantize_verified(tmp_path / "in.onnx", tmp_path / "out.onnx")
    assert asked == ["selection"]
