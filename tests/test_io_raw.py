"""ispkit.io raw files: write_raw / read_raw round trips, sidecars, DNG, bad files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ispkit
from ispkit.camera import Camera
from ispkit.errors import ConfigError, InputError, RawFormatError
from ispkit.io import CAMERA_MARKER, RawImage, read_raw, sidecar_paths, write_raw, write_sidecar

CAMERAS = Path(ispkit.__file__).parent / "cameras"
DRONE = Camera.from_yaml(CAMERAS / "drone.yaml")
MICROSCOPY = Camera.from_yaml(CAMERAS / "microscopy.yaml")
CUSTOM = Camera(
    name="bench",
    pattern="GBRG",
    bit_depth=10,
    container_bits=12,
    black_level=(64 / 4095, 65 / 4095, 66 / 4095, 67 / 4095),
    white_balance=(2.0, 1.0, 1.5),
    color_matrix=((1.5, -0.25, -0.25), (-0.5, 2.0, -0.5), (0.0, -0.75, 1.75)),
    gain=1.25,
    read_noise=2.5,
    description="bench camera, 2.4 µm pixels, 10 bit × 4 in 12",  # non-ASCII on purpose
    optics={"pixel_pitch_um": 2.4},
)


def _mosaic(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).random((h, w))
    raw[0, 0], raw[-1, -1] = 0.0, 1.0
    return raw


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- round trips ------------------------------------------------------------------------


class TestRoundTrip:
    @pytest.mark.parametrize("camera", [DRONE, MICROSCOPY, CUSTOM], ids=lambda c: c.name)
    def test_stored_numbers_and_camera_come_back(self, tmp_path, camera):
        raw = _mosaic()
        path = write_raw(tmp_path / "raw.tiff", raw, camera)
        assert path == tmp_path / "raw.tiff"
        stored = np.round(raw * camera.white_level)

        image = read_raw(path)
        assert isinstance(image, RawImage)
        assert image.mosaic.dtype == np.float64 and image.mosaic.shape == (6, 8)
        np.testing.assert_array_equal(image.mosaic, stored / camera.white_level)
        assert image.mosaic[0, 0] == 0.0 and image.mosaic[-1, -1] == 1.0
        assert image.camera == camera
        assert image.path == path

    @pytest.mark.parametrize("camera", [DRONE, CUSTOM], ids=lambda c: c.name)
    def test_file_is_a_plain_uint16_tiff_with_embedded_camera(self, tmp_path, camera):
        raw = _mosaic()
        path = write_raw(tmp_path / "raw.tiff", raw, camera)
        with tifffile.TiffFile(path) as tif:
            assert len(tif.pages) == 1
            page = tif.pages.first
            assert page.dtype == np.uint16 and page.shape == (6, 8)
            np.testing.assert_array_equal(page.asarray(), np.round(raw * camera.white_level).astype(np.uint16))
            lines = page.description.splitlines()
        assert lines[0] == f"{CAMERA_MARKER}: 1"
        assert Camera.from_yaml("\n".join(lines[1:])) == camera
        if camera is CUSTOM:  # 12-bit container: nothing above 4095 in the uint16 page
            assert tifffile.imread(path).max() == 4095

    def test_builtin_camera_by_name(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(), "drone")
        assert read_raw(path).camera == Camera.builtin("drone") == DRONE

    def test_known_numbers(self, tmp_path):
        raw = np.array([[0.0, 0.5], [1.0, 0.25]])
        path = write_raw(tmp_path / "raw.tiff", raw, MICROSCOPY)
        assert tifffile.imread(path).tolist() == [[0, 32768], [65535, 16384]]  # 32767.5 rounds to even
        assert read_raw(path).mosaic.tolist() == [[0.0, 32768 / 65535], [1.0, 16384 / 65535]]

    def test_float32_and_torch_input(self, tmp_path):
        raw = _mosaic().astype(np.float32)
        a = read_raw(write_raw(tmp_path / "a.tiff", raw, DRONE)).mosaic
        b = read_raw(write_raw(tmp_path / "b.tiff", torch.from_numpy(raw), DRONE)).mosaic
        np.testing.assert_array_equal(a, np.round(raw.astype(np.float64) * 65535) / 65535)
        np.testing.assert_array_equal(a, b)

    @settings(max_examples=25, deadline=None)
    @given(
        h=st.integers(1, 4),
        w=st.integers(1, 4),
        bits=st.integers(1, 16),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_property_round_trip(self, h, w, bits, seed):
        camera = Camera(name="p", pattern="BGGR", bit_depth=bits, container_bits=bits)
        raw = np.random.default_rng(seed).random((2 * h, 2 * w))
        with tempfile.TemporaryDirectory() as folder:
            image = read_raw(write_raw(Path(folder) / "p.tif", raw, camera))
        white = 2**bits - 1
        np.testing.assert_array_equal(image.mosaic, np.round(raw * white) / white)
        assert image.camera == camera


class TestCameraResolution:
    def test_explicit_camera_overrides_embedded(self, tmp_path):
        raw = _mosaic()
        path = write_raw(tmp_path / "raw.tiff", raw, DRONE)
        image = read_raw(path, camera="microscopy")
        assert image.camera == MICROSCOPY
        np.testing.assert_array_equal(image.mosaic, np.round(raw * 65535) / 65535)

    def test_explicit_camera_as_yaml_path_and_mapping(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(), DRONE)
        assert read_raw(path, camera=str(CAMERAS / "microscopy.yaml")).camera == MICROSCOPY
        mapping = {**CUSTOM.to_dict(), "bit_depth": 16, "container_bits": 16}
        assert read_raw(path, camera=mapping).camera == Camera.from_dict(mapping)

    def test_explicit_camera_with_fewer_bits_checks_the_values(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(), DRONE)  # holds 65535
        with pytest.raises(RawFormatError, match=r"exceed the white level 4095 of camera 'bench'"):
            read_raw(path, camera=CUSTOM)

    def test_unknown_camera_name(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(), DRONE)
        with pytest.raises(ConfigError, match=r"unknown camera 'drnoe'.*did you mean 'drone'"):
            read_raw(path, camera="drnoe")

    def test_plain_tiff_without_metadata_names_the_fix(self, tmp_path):
        path = tmp_path / "plain.tiff"
        tifffile.imwrite(path, np.zeros((4, 4), np.uint16))
        with pytest.raises(
            RawFormatError,
            match=r"plain\.tiff carries no camera metadata.*plain\.tiff\.camera\.yaml or plain\.camera\.yaml.*"
            r'read_raw\(path, camera="microscopy"\).*write_sidecar',
        ):
            read_raw(path)

    def test_sidecar_for_a_plain_tiff(self, tmp_path):
        path = tmp_path / "plain.tiff"
        data = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
        tifffile.imwrite(path, data)
        sidecar = write_sidecar(path, "microscopy")
        assert sidecar == tmp_path / "plain.tiff.camera.yaml"
        assert _listing(tmp_path) == ["plain.tiff", "plain.tiff.camera.yaml"]
        assert Camera.from_yaml(sidecar) == MICROSCOPY
        image = read_raw(path)
        assert image.camera == MICROSCOPY
        np.testing.assert_array_equal(image.mosaic, data / 65535.0)

    def test_stem_sidecar(self, tmp_path):
        path = tmp_path / "plain.tif"
        tifffile.imwrite(path, np.full((2, 2), 4095, np.uint16))
        (tmp_path / "plain.camera.yaml").write_text(CUSTOM.to_yaml(), encoding="utf-8")
        image = read_raw(path)
        assert image.camera == CUSTOM
        assert image.mosaic.tolist() == [[1.0, 1.0], [1.0, 1.0]]

    def test_full_name_sidecar_wins_over_stem_sidecar(self, tmp_path):
        path = tmp_path / "plain.tif"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16))
        (tmp_path / "plain.camera.yaml").write_text(CUSTOM.to_yaml(), encoding="utf-8")
        write_sidecar(path, DRONE)
        assert read_raw(path).camera == DRONE
        assert [p.name for p in sidecar_paths(path)] == ["plain.tif.camera.yaml", "plain.camera.yaml"]

    def test_embedded_camera_wins_over_sidecar(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(), DRONE)
        write_sidecar(path, MICROSCOPY)
        assert read_raw(path).camera == DRONE

    def test_bad_sidecar_names_its_line(self, tmp_path):
        path = tmp_path / "plain.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16))
        (tmp_path / "plain.tiff.camera.yaml").write_text("name: x\npatern: RGGB\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"plain\.tiff\.camera\.yaml:2:\d+: patern: unknown camera field"):
            read_raw(path)

    def test_write_sidecar_refuses_to_overwrite(self, tmp_path):
        path = tmp_path / "plain.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16))
        sidecar = write_sidecar(path, DRONE)
        before = sidecar.read_bytes()
        with pytest.raises(FileExistsError, match=r"plain\.tiff\.camera\.yaml exists.*overwrite=True"):
            write_sidecar(path, MICROSCOPY)
        assert sidecar.read_bytes() == before
        write_sidecar(path, MICROSCOPY, overwrite=True)
        assert read_raw(path).camera == MICROSCOPY

    def test_write_sidecar_needs_the_raw_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"missing\.tiff"):
            write_sidecar(tmp_path / "missing.tiff", DRONE)
        assert _listing(tmp_path) == []

    def test_corrupt_embedded_camera(self, tmp_path):
        path = tmp_path / "bad.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description="ispkit-camera: 1\nname: x\npattern: XYZW\n", metadata=None)
        with pytest.raises(RawFormatError, match=r"bad\.tiff: the camera embedded in its ImageDescription is invalid.*XYZW"):
            read_raw(path)

    def test_newer_embedded_format(self, tmp_path):
        path = tmp_path / "new.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description="ispkit-camera: 2\nname: x\n", metadata=None)
        with pytest.raises(RawFormatError, match="format version 2; this ispkit reads version 1"):
            read_raw(path)
        assert read_raw(path, camera=DRONE).camera == DRONE  # an explicit camera does not parse it


class TestDtypes:
    def test_uint8_with_an_8_bit_camera(self, tmp_path):
        path = tmp_path / "u8.tiff"
        tifffile.imwrite(path, np.array([[0, 255], [17, 128]], np.uint8))
        camera = Camera(name="eight", bit_depth=8, container_bits=8)
        assert read_raw(path, camera).mosaic.tolist() == [[0.0, 1.0], [17 / 255, 128 / 255]]

    def test_uint8_with_a_16_bit_camera_is_refused(self, tmp_path):
        path = tmp_path / "u8.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint8))
        with pytest.raises(RawFormatError, match=r"u8\.tiff: the file holds 8-bit numbers but camera 'microscopy' stores 16-bit"):
            read_raw(path, "microscopy")

    def test_uint32_within_the_white_level(self, tmp_path):
        path = tmp_path / "u32.tiff"
        tifffile.imwrite(path, np.array([[0, 65535], [1, 2]], np.uint32))
        assert read_raw(path, "microscopy").mosaic.tolist() == [[0.0, 1.0], [1 / 65535, 2 / 65535]]


# -- writing: input checks, overwrite protection, atomicity -----------------------------


class TestWriteRaw:
    @pytest.mark.parametrize(
        ("raw", "match"),
        [
            (np.zeros((3, 4)), r"height and width must be even; got 3×4"),
            (np.zeros((2, 2, 2)), r"expected a raw mosaic \(H, W\)"),
            (np.zeros((2, 2), np.uint16), "expected floating-point data normalised to"),
            (np.array([[0.0, 1.0000001], [0.5, -0.1]]), r"2 value\(s\) lie outside \[0, 1\].*does not clip"),
            (np.array([[0.0, np.nan], [0.5, 0.1]]), "NaN or infinite"),
            (np.zeros((0, 0)), "empty"),
        ],
    )
    def test_bad_input_writes_nothing(self, tmp_path, raw, match):
        with pytest.raises(InputError, match=match):
            write_raw(tmp_path / "raw.tiff", raw, DRONE)
        assert _listing(tmp_path) == []

    def test_container_above_16_bits(self, tmp_path):
        camera = Camera(name="deep", bit_depth=20, container_bits=20)
        with pytest.raises(InputError, match="uint16 numbers, but camera 'deep' has container_bits=20 > 16"):
            write_raw(tmp_path / "raw.tiff", np.zeros((2, 2)), camera)

    def test_refuses_to_overwrite(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(seed=1), DRONE)
        before = path.read_bytes()
        with pytest.raises(FileExistsError, match=r"raw\.tiff exists; refusing to overwrite it.*overwrite=True"):
            write_raw(path, _mosaic(seed=2), MICROSCOPY)
        assert path.read_bytes() == before
        assert _listing(tmp_path) == ["raw.tiff"]

    def test_overwrite_true_replaces(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(seed=1), DRONE)
        write_raw(path, np.ones((2, 2)), MICROSCOPY, overwrite=True)
        image = read_raw(path)
        assert image.camera == MICROSCOPY and image.mosaic.tolist() == [[1.0, 1.0], [1.0, 1.0]]
        assert _listing(tmp_path) == ["raw.tiff"]

    def test_failed_write_leaves_no_temp_file_and_keeps_old(self, tmp_path, monkeypatch):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(seed=1), DRONE)
        before = path.read_bytes()

        def broken(file, *args, **kwargs):
            Path(file).write_bytes(b"II*\x00partial")
            raise OSError("disk full")

        monkeypatch.setattr(tifffile, "imwrite", broken)
        with pytest.raises(OSError, match="disk full"):
            write_raw(path, _mosaic(seed=2), DRONE, overwrite=True)
        with pytest.raises(OSError, match="disk full"):
            write_raw(tmp_path / "new.tiff", _mosaic(seed=2), DRONE)
        assert path.read_bytes() == before
        assert _listing(tmp_path) == ["raw.tiff"]

    def test_two_concurrent_writers_of_a_new_file(self, tmp_path, monkeypatch):
        """Both pass the early existence check; exactly one publishes, the other is refused, no temp file stays."""
        import threading

        barrier = threading.Barrier(2)
        real = tifffile.imwrite

        def slow(file, *args, **kwargs):
            real(file, *args, **kwargs)
            barrier.wait(timeout=10)

        monkeypatch.setattr(tifffile, "imwrite", slow)
        path = tmp_path / "raw.tiff"
        outcomes = {}

        def writer(name, camera):
            try:
                write_raw(path, _mosaic(seed=3), camera)
                outcomes[name] = "ok"
            except FileExistsError as exc:
                outcomes[name] = str(exc)

        threads = [threading.Thread(target=writer, args=(n, c)) for n, c in (("drone", DRONE), ("microscopy", MICROSCOPY))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(outcomes.values())[1] == "ok"
        winner = next(n for n, o in outcomes.items() if o == "ok")
        loser = next(o for o in outcomes.values() if o != "ok")
        assert "raw.tiff exists; refusing to overwrite it (pass overwrite=True to replace it)" in loser
        assert read_raw(path).camera.name == winner
        assert _listing(tmp_path) == ["raw.tiff"]

    def test_interrupted_write_leaves_no_temp_file(self, tmp_path, monkeypatch):
        def interrupted(file, *args, **kwargs):
            Path(file).write_bytes(b"II*\x00" + bytes(1_000_000))
            raise KeyboardInterrupt

        monkeypatch.setattr(tifffile, "imwrite", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_raw(tmp_path / "raw.tiff", _mosaic(), DRONE)
        assert _listing(tmp_path) == []

    def test_creates_parent_folders(self, tmp_path):
        path = write_raw(tmp_path / "a" / "b" / "raw.tiff", np.zeros((2, 2)), DRONE)
        assert read_raw(path).camera == DRONE


# -- bad files ----------------------------------------------------------------------------


class TestBadFiles:
    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.tiff"
        with pytest.raises(FileNotFoundError, match=r"no such raw file: .*nope\.tiff") as info:
            read_raw(path, "microscopy")
        assert info.value.filename == str(path)

    def test_random_bytes(self, tmp_path):
        path = tmp_path / "noise.tiff"
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        with pytest.raises(RawFormatError, match=r"noise\.tiff: not a readable TIFF or DNG file.*not a TIFF file") as info:
            read_raw(path, "microscopy")
        assert str(path) in str(info.value)

    def test_empty_file(self, tmp_path):
        path = tmp_path / "empty.tiff"
        path.write_bytes(b"")
        with pytest.raises(RawFormatError, match=r"empty\.tiff: not a readable TIFF or DNG file"):
            read_raw(path, "microscopy")

    def test_truncated(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(64, 64), DRONE)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(RawFormatError, match=r"raw\.tiff: the raw page: the file is truncated: its image data run to byte \d+, but it has \d+ bytes"):
            read_raw(path)

    def test_truncated_header(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(64, 64), DRONE)
        path.write_bytes(path.read_bytes()[:6])
        with pytest.raises(RawFormatError, match=r"raw\.tiff: not a readable TIFF or DNG file"):
            read_raw(path)

    def test_header_claiming_a_huge_image(self, tmp_path):
        path = write_raw(tmp_path / "raw.tiff", _mosaic(16, 16), DRONE)
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages[0].tags[257]  # ImageLength
            where, size = tag.valueoffset, {3: 2, 4: 4}[int(tag.dtype)]  # SHORT or LONG
        content = bytearray(path.read_bytes())
        content[where : where + size] = (2**31).to_bytes(size, "little")
        path.write_bytes(bytes(content))
        with pytest.raises(RawFormatError, match=r"raw\.tiff: the raw page: declares 16×2147483648 pixels .* more than the limit of 250,000,000"):
            read_raw(path)

    @pytest.mark.parametrize("kind", ["tiff", "dng"])
    def test_mutated_files_raise_only_raw_format_errors(self, tmp_path, kind):
        """Random byte changes and cuts: every outcome is a clean read or a RawFormatError."""
        data = np.random.default_rng(0).integers(0, 4096, (16, 16), dtype=np.uint16)
        if kind == "tiff":
            source = write_raw(tmp_path / "src.tiff", data / 4095, CUSTOM)
        else:
            source = write_dng(tmp_path / "src.dng", data, raw_tags=[(50714, 5, 1, (256, 4)), (50717, "H", 1, 4095)], subifd=True)
        original = source.read_bytes()
        rng = np.random.default_rng(1)
        path = tmp_path / f"mutated.{kind}"
        outcomes = {"read": 0, "error": 0}
        for _ in range(300):
            content = bytearray(original)
            for _ in range(rng.integers(1, 6)):
                content[rng.integers(0, min(len(content), 512))] = rng.integers(0, 256)
            if rng.random() < 0.2:
                content = content[: rng.integers(0, len(content))]
            path.write_bytes(bytes(content))
            try:
                image = read_raw(path)
            except RawFormatError as exc:
                assert str(path) in str(exc)  # noqa: PT017 - a mutant may be read or refused; a refusal names the file
                outcomes["error"] += 1
            else:
                assert image.mosaic.ndim == 2 and 0.0 <= image.mosaic.min() <= image.mosaic.max() <= 1.0
                outcomes["read"] += 1
        assert outcomes["error"] > 50

    @pytest.mark.parametrize(
        ("dtype", "match"),
        [
            (np.float32, r"the raw page: expected unsigned integer samples \(1 to 32 bits\), found 32-bit floating-point \(IEEEFP\) samples"),
            (np.int16, r"the raw page: expected unsigned integer samples \(1 to 32 bits\), found 16-bit signed integer samples"),
        ],
    )
    def test_wrong_dtype(self, tmp_path, dtype, match):
        path = tmp_path / "wrong.tiff"
        tifffile.imwrite(path, np.zeros((4, 4), dtype))
        with pytest.raises(RawFormatError, match=rf"wrong\.tiff: {match}"):
            read_raw(path, "microscopy")

    def test_rgb(self, tmp_path):
        path = tmp_path / "rgb.tiff"
        tifffile.imwrite(path, np.zeros((4, 4, 3), np.uint16), photometric="rgb")
        with pytest.raises(RawFormatError, match=r"rgb\.tiff: expected a raw mosaic with one sample per pixel, found 3"):
            read_raw(path, "microscopy")

    def test_odd_size(self, tmp_path):
        path = tmp_path / "odd.tiff"
        tifffile.imwrite(path, np.zeros((5, 6), np.uint16))
        with pytest.raises(RawFormatError, match=r"odd\.tiff: a raw mosaic must hold whole 2×2 CFA blocks.*found 5×6"):
            read_raw(path, "microscopy")

    def test_stack(self, tmp_path):
        path = tmp_path / "stack.tiff"
        tifffile.imwrite(path, np.zeros((3, 4, 4), np.uint16), photometric="minisblack")
        with pytest.raises(RawFormatError, match=r"stack\.tiff: expected a single-page raw TIFF, found 3 pages"):
            read_raw(path, "microscopy")

    def test_value_above_white_level(self, tmp_path):
        path = tmp_path / "hot.tiff"
        tifffile.imwrite(path, np.array([[0, 4095], [4096, 5000]], np.uint16))
        with pytest.raises(RawFormatError, match=r"hot\.tiff: 2 stored value\(s\) exceed the white level 4095 of camera 'bench'.*largest 5000"):
            read_raw(path, CUSTOM)


# -- DNG ----------------------------------------------------------------------------------

DNG_VERSION = (50706, "B", 4, (1, 4, 0, 0))


def _cfa_tags(pattern=(1, 0, 2, 1), dim=(2, 2)):
    return [(33421, "H", 2, dim), (33422, "B", len(pattern), pattern)]


def write_dng(path, data, *, pattern=(1, 0, 2, 1), dim=(2, 2), raw_tags=(), main_tags=(), subifd=False):
    """A minimal uncompressed DNG: the CFA image in IFD0, or in a SubIFD behind an RGB preview."""
    raw_tags = [*_cfa_tags(pattern, dim), *raw_tags]
    with tifffile.TiffWriter(path) as tif:
        if subifd:
            preview = np.zeros((data.shape[0] // 2, data.shape[1] // 2, 3), np.uint8)
            tif.write(preview, photometric="rgb", subfiletype=1, subifds=1, extratags=[DNG_VERSION, *main_tags], metadata=None)
            tif.write(data, photometric="cfa", subfiletype=0, extratags=raw_tags, metadata=None)
        else:
            tif.write(data, photometric="cfa", extratags=[DNG_VERSION, *raw_tags, *main_tags], metadata=None)
    return Path(path)


def _data(h=4, w=6, top=4095, seed=0):
    return np.random.default_rng(seed).integers(0, top + 1, (h, w), dtype=np.uint16)


class TestDng:
    def test_fixture_is_dng_with_cfa_page(self, tmp_path):
        path = write_dng(tmp_path / "x.dng", _data())
        with tifffile.TiffFile(path) as tif:
            assert tif.is_dng
            assert tif.pages.first.photometric == 32803

    def test_grbg_black_and_values(self, tmp_path):
        data = _data(top=65535)
        path = write_dng(
            tmp_path / "frame.dng",
            data,
            pattern=(1, 0, 2, 1),
            raw_tags=[(50713, "H", 2, (2, 2)), (50714, "H", 4, (4096, 4100, 4104, 4108)), (50717, "I", 1, 65535)],
            main_tags=[(50708, "s", 0, "Test Cam X1")],
        )
        image = read_raw(path)
        camera = image.camera
        assert camera.name == "Test Cam X1"
        assert camera.pattern == "GRBG"
        assert (camera.bit_depth, camera.container_bits, camera.white_level) == (16, 16, 65535)
        assert camera.black_level == (4096 / 65535, 4100 / 65535, 4104 / 65535, 4108 / 65535)
        assert camera.white_balance == (1.0, 1.0, 1.0)
        assert camera.color_matrix == Camera.identity().color_matrix
        assert "WhiteLevel 65535" in camera.description
        np.testing.assert_array_equal(image.mosaic, data / 65535.0)
        assert image.path == path

    @pytest.mark.parametrize(("codes", "pattern"), [((0, 1, 1, 2), "RGGB"), ((2, 1, 1, 0), "BGGR"), ((1, 0, 2, 1), "GRBG"), ((1, 2, 0, 1), "GBRG")])
    def test_patterns(self, tmp_path, codes, pattern):
        image = read_raw(write_dng(tmp_path / "p.dng", _data(), pattern=codes))
        assert image.camera.pattern == pattern
        assert image.camera.name == "p"  # no UniqueCameraModel: the file stem

    def test_cfa_plane_color_remaps_codes(self, tmp_path):
        # planes listed as B, G, R: code 0 means blue
        path = write_dng(tmp_path / "p.dng", _data(), pattern=(0, 1, 1, 2), raw_tags=[(50710, "B", 3, (2, 1, 0))])
        assert read_raw(path).camera.pattern == "BGGR"

    def test_defaults_without_black_and_white_level(self, tmp_path):
        data = _data(top=65535)
        image = read_raw(write_dng(tmp_path / "d.dng", data))
        assert image.camera.black_level == (0.0, 0.0, 0.0, 0.0)
        assert image.camera.container_bits == 16
        np.testing.assert_array_equal(image.mosaic, data / 65535.0)

    def test_12_bit_white_level_in_16_bit_samples_and_rational_black(self, tmp_path):
        data = _data(top=4095)
        path = write_dng(tmp_path / "d.dng", data, raw_tags=[(50714, 5, 1, (257, 4)), (50717, "H", 1, 4095)])
        image = read_raw(path)
        assert (image.camera.bit_depth, image.camera.container_bits, image.camera.white_level) == (12, 12, 4095)
        assert image.camera.black_level == (64.25 / 4095,) * 4
        np.testing.assert_array_equal(image.mosaic, data / 4095.0)

    def test_white_level_not_a_power_of_two(self, tmp_path):
        data = _data(top=15520)
        image = read_raw(write_dng(tmp_path / "d.dng", data, raw_tags=[(50717, "H", 1, 15520)]))
        assert image.camera.container_bits == 14
        np.testing.assert_array_equal(image.mosaic, data / 16383.0)

    def test_black_level_repeat_1x2_and_four_rationals(self, tmp_path):
        path = write_dng(tmp_path / "a.dng", _data(), raw_tags=[(50713, "H", 2, (1, 2)), (50714, "H", 2, (100, 200)), (50717, "H", 1, 4095)])
        assert read_raw(path).camera.black_level == (100 / 4095, 200 / 4095, 100 / 4095, 200 / 4095)
        path = write_dng(
            tmp_path / "b.dng",
            _data(),
            raw_tags=[(50713, "H", 2, (2, 2)), (50714, 5, 4, (256, 2, 129, 1, 3, 2, 0, 1)), (50717, "H", 1, 4095)],
        )
        assert read_raw(path).camera.black_level == (128 / 4095, 129 / 4095, 1.5 / 4095, 0.0)

    def test_raw_in_subifd_behind_preview(self, tmp_path):
        data = _data(8, 8, top=65535)
        path = write_dng(
            tmp_path / "sub.dng",
            data,
            pattern=(0, 1, 1, 2),
            raw_tags=[(50714, "H", 1, 4096), (50717, "H", 1, 65535)],
            main_tags=[(50728, 5, 3, (1, 2, 1, 1, 2, 3))],  # AsShotNeutral (0.5, 1, 0.667)
            subifd=True,
        )
        with tifffile.TiffFile(path) as tif:  # the fixture is what it claims to be
            assert tif.pages.first.photometric == 2 and tif.pages.first.subfiletype == 1
            assert tif.pages.first.pages.first.photometric == 32803
        image = read_raw(path)
        assert image.camera.pattern == "RGGB"
        assert image.camera.black_level == (4096 / 65535,) * 4
        assert image.camera.white_balance == pytest.approx((2.0, 1.0, 1.5))
        np.testing.assert_array_equal(image.mosaic, data / 65535.0)

    def test_explicit_camera_overrides_dng_tags(self, tmp_path):
        data = _data(top=65535)
        path = write_dng(tmp_path / "d.dng", data, raw_tags=[(50717, "H", 1, 65535)])
        image = read_raw(path, camera="drone")
        assert image.camera == DRONE
        np.testing.assert_array_equal(image.mosaic, data / 65535.0)

    def test_sidecar_overrides_dng_tags(self, tmp_path):
        path = write_dng(tmp_path / "d.dng", _data())
        write_sidecar(path, MICROSCOPY)
        assert read_raw(path).camera == MICROSCOPY

    def test_active_area_crops(self, tmp_path):
        data = _data(6, 8, top=4095)
        path = write_dng(tmp_path / "a.dng", data, raw_tags=[(50717, "H", 1, 4095), (50829, "H", 4, (2, 2, 6, 6))])
        image = read_raw(path)
        np.testing.assert_array_equal(image.mosaic, data[2:6, 2:6] / 4095.0)

    def test_zero_black_level_deltas_are_fine(self, tmp_path):
        path = write_dng(tmp_path / "z.dng", _data(), raw_tags=[(50715, "H", 6, (0,) * 6), (50716, "H", 4, (0,) * 4)])
        assert read_raw(path).camera.black_level == (0.0,) * 4

    def test_value_above_white_level(self, tmp_path):
        data = _data(top=4095)
        data[1, 1] = 4096
        path = write_dng(tmp_path / "hot.dng", data, raw_tags=[(50717, "H", 1, 4095)])
        with pytest.raises(RawFormatError, match=r"hot\.dng: 1 stored value\(s\) exceed the white level 4095"):
            read_raw(path)

    def test_linearization_table_applied_exactly(self, tmp_path):
        data = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [7, 0, 1, 65535], [4, 4, 4, 4]], np.uint16)  # 4, 7, 65535: beyond the table
        path = write_dng(tmp_path / "lt.dng", data, raw_tags=[(50712, "H", 4, (0, 10, 20, 4000)), (50717, "H", 1, 4095)])
        image = read_raw(path)
        table = np.array([0, 10, 20, 4000])
        np.testing.assert_array_equal(image.mosaic * 4095, table[np.minimum(data, 3)])  # clamped to the last entry
        assert image.camera.container_bits == 12 and "LinearizationTable applied" in image.camera.description

    def test_black_level_deltas(self, tmp_path):
        data = _data(4, 6, top=4095)
        delta_h = (0, 2, 0, 2, 4, 6)  # per column: even columns mean 4/3, odd columns 10/3
        delta_v = (1, 1, 3, 3)  # per row: even rows 2, odd rows 2
        path = write_dng(
            tmp_path / "bd.dng",
            data,
            raw_tags=[
                (50714, "H", 1, (100,)),
                (50717, "H", 1, 4095),
                (50715, 10, 6, sum(((v, 1) for v in delta_h), ())),
                (50716, 10, 4, sum(((v, 1) for v in delta_v), ())),
            ],
        )
        image = read_raw(path)
        expected = np.array([[100 + 2 + 4 / 3, 100 + 2 + 10 / 3]] * 2).ravel() / 4095
        np.testing.assert_allclose(image.camera.black_level, expected, rtol=1e-12)
        exact = 100 + np.add.outer(np.array(delta_v, float), np.array(delta_h, float))
        np.testing.assert_allclose(image.black_map() * 4095, exact, rtol=1e-12)
        np.testing.assert_array_equal(image.mosaic * 4095, data)


class TestUnsupportedDng:
    def test_2x4_cfa_repeat(self, tmp_path):
        path = write_dng(tmp_path / "x.dng", _data(4, 8), pattern=(0, 1, 0, 1, 1, 2, 1, 2), dim=(2, 4))
        with pytest.raises(RawFormatError, match=r"x\.dng: unsupported DNG: CFARepeatPatternDim is \(2, 4\); read_raw supports 2×2 Bayer"):
            read_raw(path)

    def test_2x4_cfa_repeat_even_with_a_camera(self, tmp_path):
        path = write_dng(tmp_path / "x.dng", _data(4, 8), pattern=(0, 1, 0, 1, 1, 2, 1, 2), dim=(2, 4))
        with pytest.raises(RawFormatError, match=r"CFARepeatPatternDim is \(2, 4\)"):
            read_raw(path, camera="drone")

    def test_non_bayer_2x2(self, tmp_path):
        path = write_dng(tmp_path / "x.dng", _data(), pattern=(0, 1, 2, 1))
        with pytest.raises(RawFormatError, match=r"CFAPattern \(0, 1, 2, 1\) is RGBG, not a Bayer layout"):
            read_raw(path)

    def test_linear_dng(self, tmp_path):
        path = tmp_path / "lin.dng"
        tifffile.imwrite(path, np.zeros((4, 4, 3), np.uint16), photometric=34892, extratags=[DNG_VERSION])
        with pytest.raises(RawFormatError, match=r"lin\.dng: a linear DNG \(PhotometricInterpretation 34892, LinearRaw\)"):
            read_raw(path)

    def test_no_cfa_page(self, tmp_path):
        path = tmp_path / "grey.dng"
        tifffile.imwrite(path, np.zeros((4, 4), np.uint16), photometric="minisblack", extratags=[DNG_VERSION])
        with pytest.raises(
            RawFormatError, match=r"grey\.dng: this DNG has no full-resolution CFA image.*found PhotometricInterpretation MINISBLACK/NewSubFileType 0"
        ):
            read_raw(path)

    def test_compression_patched_to_jpeg(self, tmp_path):
        path = write_dng(tmp_path / "jpeg.dng", _data())
        with tifffile.TiffFile(path) as tif:
            where = tif.pages.first.tags[259].valueoffset  # Compression, a SHORT stored in the entry
        content = bytearray(path.read_bytes())
        content[where : where + 2] = (7).to_bytes(2, "little")  # claim JPEG
        path.write_bytes(bytes(content))
        with pytest.raises(RawFormatError, match=r"jpeg\.dng: its raw image: strip 0: is not a JPEG stream \(no start-of-image marker\)"):
            read_raw(path)

    def test_odd_active_area(self, tmp_path):
        path = write_dng(tmp_path / "aa.dng", _data(6, 8), raw_tags=[(50829, "H", 4, (1, 0, 5, 8))])
        with pytest.raises(RawFormatError, match=r"ActiveArea \(1, 0, 5, 8\) starts on an odd row or column"):
            read_raw(path)

    def test_odd_size(self, tmp_path):
        path = write_dng(tmp_path / "odd.dng", _data(4, 5))
        with pytest.raises(RawFormatError, match=r"odd\.dng: a raw mosaic must hold whole 2×2 CFA blocks.*found 4×5"):
            read_raw(path)

    def test_white_level_beyond_bits_per_sample(self, tmp_path):
        path = tmp_path / "w.dng"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint8), photometric="cfa", extratags=[DNG_VERSION, *_cfa_tags(), (50717, "H", 1, 4095)])
        with pytest.raises(RawFormatError, match="WhiteLevel 4095 does not fit BitsPerSample 8"):
            read_raw(path)


class TestRawImage:
    def test_repr_and_checks(self, tmp_path):
        image = RawImage(np.zeros((2, 4)), DRONE, tmp_path / "a.tiff")
        assert repr(image) == f"RawImage(2×4 mosaic, camera='drone', path={str(tmp_path / 'a.tiff')!r})"
        with pytest.raises(InputError, match="even"):
            RawImage(np.zeros((3, 4)), DRONE)
        with pytest.raises(InputError, match="expected a Camera"):
            RawImage(np.zeros((2, 2)), "drone")

    def test_frozen(self):
        image = RawImage(np.zeros((2, 2)), DRONE)
        with pytest.raises(AttributeError):
            image.camera = MICROSCOPY


# -- hostile embedded camera ------------------------------------------------------------

EMBEDDED_BOMB = f"""\
{CAMERA_MARKER}: 1
name: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


class TestHostileEmbeddedCamera:
    def test_billion_laughs_in_the_image_description(self, tmp_path):
        import time
        import tracemalloc

        path = tmp_path / "bomb.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description=EMBEDDED_BOMB, metadata=None)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            with pytest.raises(RawFormatError) as info:
                read_raw(path)
        finally:
            seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert seconds < 2.0 and peak < 20_000_000
        message = str(info.value)
        assert message.startswith(f"{path}: the camera embedded in its ImageDescription is not valid YAML: ")
        assert f"{path} (ImageDescription):3:8: YAML aliases are not allowed (found *a)" in message

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ("name: [a, b]\n", "name: expected a camera name (a non-empty string), got ['a', 'b']"),
            ("name: 7\n", "name: expected a camera name (a non-empty string), got 7"),
            ("name: x\nblack_level: [0.5, 0.5, 1.0, 0.5]\n", "black_level: need -1 < black level < 1"),
        ],
    )
    def test_invalid_embedded_cameras(self, tmp_path, body, problem):
        path = tmp_path / "bad.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description=f"{CAMERA_MARKER}: 1\n{body}", metadata=None)
        with pytest.raises(RawFormatError, match="the camera embedded in its ImageDescription is invalid") as info:
            read_raw(path)
        assert problem in str(info.value)

    @pytest.mark.parametrize("description", [f"{CAMERA_MARKER}: true\nname: x\n", f"{CAMERA_MARKER}:\n- 1\n", f"{CAMERA_MARKER}: 1\n{CAMERA_MARKER}x: 2\n"])
    def test_malformed_marker(self, tmp_path, description):
        path = tmp_path / "bad.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description=description, metadata=None)
        with pytest.raises(RawFormatError, match="the camera embedded in its ImageDescription"):
            read_raw(path)

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ("name: x\nname: y\n", "(ImageDescription):3:1: duplicate key 'name': first at line 2, again at line 3"),
            ("name: !!python/object/apply:os.system [true]\n", "(ImageDescription):2:7: unsupported YAML tag"),
            ("name: x\ngain: 1" + "0" * 400 + "\n", "(ImageDescription):3:7: integer 1000"),
        ],
    )
    def test_other_hostile_yaml_is_a_raw_format_error_naming_its_line(self, tmp_path, body, problem):
        path = tmp_path / "bad.tiff"
        tifffile.imwrite(path, np.zeros((2, 2), np.uint16), description=f"{CAMERA_MARKER}: 1\n{body}", metadata=None)
        with pytest.raises(RawFormatError, match="is not valid YAML") as info:
            read_raw(path)
        assert f"{path} {problem}" in str(info.value)
