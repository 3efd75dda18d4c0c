"""ispkit.io.png: 8-bit conversion and PNG output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ispkit.errors import InputError
from ispkit.io import to_uint8, write_png


def _rgb(h: int = 3, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((3, h, w))


class TestToUint8:
    def test_known_values(self):
        values = np.array([0.0, 1.0, 0.5, 1.2, -0.3, 0.1 / 255, 0.6 / 255, 254.4 / 255, 100.49 / 255, 100.51 / 255])
        rgb = np.stack([values, values, values])[:, None, :]
        out = to_uint8(rgb)
        assert out.dtype == np.uint8
        assert out[0, :, 0].tolist() == [0, 255, 128, 255, 0, 0, 1, 254, 100, 101]

    def test_layout_channel_last(self):
        rgb = np.zeros((3, 2, 4))
        rgb[0, 0, 1] = 1.0  # red at row 0, column 1
        rgb[1, 1, 3] = 1.0  # green at row 1, column 3
        rgb[2, 1, 0] = 0.2  # blue at row 1, column 0
        out = to_uint8(rgb)
        assert out.shape == (2, 4, 3)
        assert out[0, 1].tolist() == [255, 0, 0]
        assert out[1, 3].tolist() == [0, 255, 0]
        assert out[1, 0].tolist() == [0, 0, 51]
        assert int(out.sum()) == 255 + 255 + 51

    def test_equals_formula(self):
        rgb = _rgb(4, 6) * 1.4 - 0.2
        expected = np.round(np.clip(rgb.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(to_uint8(rgb), expected)

    def test_float32_input(self):
        assert to_uint8(np.full((3, 1, 1), 0.5, dtype=np.float32)).ravel().tolist() == [128, 128, 128]

    @pytest.mark.parametrize("shape", [(2, 2, 3), (4, 4), (1, 3, 2, 2)])
    def test_wrong_layout(self, shape):
        with pytest.raises(InputError, match=r"to_uint8: expected a channel-first RGB view \(3, H, W\)"):
            to_uint8(np.zeros(shape))

    def test_integer_input(self):
        with pytest.raises(InputError, match="normalised to \\[0, 1\\]"):
            to_uint8(np.zeros((3, 2, 2), dtype=np.uint8))


class TestWritePng:
    def test_round_trip_via_pil(self, tmp_path):
        rgb = _rgb(5, 7)
        path = write_png(tmp_path / "out.png", rgb)
        assert path == tmp_path / "out.png"
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.mode == "RGB"
            assert image.size == (7, 5)
            np.testing.assert_array_equal(np.asarray(image), to_uint8(rgb))

    def test_creates_parent_folders(self, tmp_path):
        path = write_png(tmp_path / "a" / "b" / "c.png", _rgb())
        assert path.is_file()

    def test_overwrite(self, tmp_path):
        path = tmp_path / "out.png"
        write_png(path, np.zeros((3, 2, 2)))
        write_png(path, np.ones((3, 2, 2)))
        with Image.open(path) as image:
            assert np.asarray(image).min() == 255

    def test_overwrite_false_refuses(self, tmp_path):
        path = tmp_path / "out.png"
        write_png(path, np.zeros((3, 2, 2)))
        before = path.read_bytes()
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            write_png(path, np.ones((3, 2, 2)), overwrite=False)
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]

    def test_bad_input_writes_nothing(self, tmp_path):
        with pytest.raises(InputError):
            write_png(tmp_path / "out.png", np.zeros((2, 2, 3)))
        assert list(tmp_path.iterdir()) == []
