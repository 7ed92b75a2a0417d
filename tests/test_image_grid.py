import io

import numpy as np
import pytest
from PIL import Image

from gan_jax.studies import figures


def test_grid_places_each_image_in_its_cell_row_by_row():
    images = np.stack([np.full((4, 5, 3), i * 20, np.uint8) for i in range(7)])
    grid = figures.image_grid(images, columns=3, pad=1)
    assert grid.shape == (3 * 5 + 1, 3 * 6 + 1, 3)
    for i in range(7):
        top, left = 1 + (i // 3) * 5, 1 + (i % 3) * 6
        assert np.all(grid[top : top + 4, left : left + 5] == i * 20)
    assert np.all(grid[11:15, 13:18] == 255)  # the two empty cells stay white
    assert np.all(grid[0] == 255)


def test_saved_png_round_trips_and_bad_input_is_named():
    images = np.random.default_rng(0).integers(0, 256, (5, 6, 6, 1), dtype=np.uint8)
    buf = io.BytesIO()
    figures.save_image_grid(images, buf, columns=5)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    np.testing.assert_array_equal(decoded, figures.image_grid(images, 5)[..., 0])
    with pytest.raises(ValueError, match="uint8 images"):
        figures.image_grid(images.astype(np.float32))
