"""The memory benchmark's photos (benchmarks/memory.py, `make_photo`): a camera's sensor noise on request."""

from __future__ import annotations

import numpy as np
from PIL import Image

from benchmarks.memory import make_photo


def test_noise_is_a_cameras_and_off_by_default(tmp_path):
    smooth, noisy, again = tmp_path / "smooth.jpg", tmp_path / "noisy.jpg", tmp_path / "again.jpg"
    assert make_photo(smooth, 0.3) == make_photo(noisy, 0.3, noise=4.0) == make_photo(again, 0.3, noise=4.0)
    a, b, c = (np.asarray(Image.open(p).convert("RGB")).astype(np.float32) for p in (smooth, noisy, again))
    assert np.array_equal(b, c)  # seeded by the size: the same photo each run
    diff = b - a
    assert 2.0 < diff.std() < 6.0  # sigma 4 through a JPEG at quality 92
    assert abs(float(diff.mean())) < 0.5  # noise, not a shift
