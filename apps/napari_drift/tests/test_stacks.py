"""Qt-free tests of raw stacks (napari_drift/logic/stacks.py) and their layer data (logic/raw_layer.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari_drift.logic import stacks
from napari_drift.logic.raw_layer import cfa_rgb, mosaic_from_layer, read_raw_layers
from napari_drift.logic.stacks import folder_stack, pixel_size_of, tiff_stack

from ispkit import Camera, InputError, RawFormatError
from ispkit.io import read_raw, write_raw, write_sidecar

MICRO_PIXEL = 6.5 / 40  # the microscopy camera's pixel size, µm


@pytest.fixture
def frames() -> np.ndarray:
    """Three 16-bit frames of 8×6 (the stored numbers)."""
    return (np.random.default_rng(0).random((3, 8, 6)) * 65535).astype(np.uint16)


def _is_lazy_per_frame(array, frames: int) -> bool:
    return hasattr(array, "dask") and array.chunks[0] == (1,) * frames


def test_a_three_page_uint16_tiff_is_a_stack_of_frames(tmp_path, frames):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, frames, photometric="rgb", planarconfig="separate")  # tifffile's default for (3, H, W): the file
    with pytest.raises(RawFormatError, match=r"stack of raw frames without camera metadata .*write_sidecar"):
        tiff_stack(path)
    stack = tiff_stack(path, "microscopy")
    assert stack.frames.shape == (3, 8, 6) and _is_lazy_per_frame(stack.frames, 3) and stack.frames.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(stack.frames), (frames / 65535.0).astype(np.float32))
    assert stack.axes == ("frame", "y", "x") and stack.name == "stack" and stack.camera == Camera.get("microscopy")
    assert stack.pixel_size == (pytest.approx(MICRO_PIXEL), pytest.approx(MICRO_PIXEL))  # the camera's: the file has none

    pages = tmp_path / "pages.tif"
    with tifffile.TiffWriter(pages) as writer:  # plain pages, no shape metadata
        for frame in frames:
            writer.write(frame, photometric="minisblack", metadata=None)
    write_sidecar(pages, "microscopy")
    stack = tiff_stack(pages)  # the camera from the sidecar
    np.testing.assert_array_equal(np.asarray(stack.frames[2]), (frames[2] / 65535.0).astype(np.float32))


def test_an_ome_tiff_keeps_its_axes_and_physical_pixel_size(tmp_path, frames):
    path = tmp_path / "series.ome.tif"
    data = np.stack([frames, frames[::-1]])  # (T=2, Z=3, Y, X)
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 250, "PhysicalSizeYUnit": "nm"})
    stack = tiff_stack(path, "microscopy")
    assert stack.frames.shape == (2, 3, 8, 6) and stack.axes == ("t", "z", "y", "x")
    assert stack.pixel_size == (pytest.approx(0.25), pytest.approx(0.2))  # the file's calibration wins over the camera's
    np.testing.assert_array_equal(np.asarray(stack.frames[1, 0]), (frames[2] / 65535.0).astype(np.float32))
    layers = read_raw_layers(path, camera="microscopy")
    (data, kwargs, kind), (cfa, cfa_kwargs, _) = layers
    assert kind == "image" and kwargs["scale"] == (1.0, 1.0, 0.25, 0.2) and kwargs["units"] == ("pixel", "pixel", "µm", "µm")
    assert kwargs["axis_labels"] == ("t", "z", "y", "x") and cfa_kwargs["scale"] == kwargs["scale"]
    assert cfa.shape == (2, 3, 8, 6, 3) and hasattr(cfa, "dask")
    np.testing.assert_array_equal(np.asarray(cfa[0, 1]), cfa_rgb(np.asarray(data[0, 1]), "RGGB"))
    mosaic, camera = mosaic_from_layer(_Layer(data, kwargs), (1, 2))  # frame (t=1, z=2): frames[::-1][2]
    np.testing.assert_array_equal(mosaic, (frames[0] / 65535.0).astype(np.float32)) and camera == Camera.get("microscopy")
    with pytest.raises(InputError, match=r"frame index \(2, 0\) is not one of them"):
        mosaic_from_layer(_Layer(data, kwargs), (2, 0))


class _Layer:
    """A stand-in for a napari layer (data + metadata), for the Qt-free helpers."""

    def __init__(self, data, kwargs):
        self.data, self.metadata, self.name, self.rgb = data, kwargs["metadata"], kwargs["name"], False


def test_pixel_size_from_imagej_and_centimetre_resolution_not_from_inches(tmp_path, frames):
    imagej = tmp_path / "imagej.tif"
    tifffile.imwrite(imagej, frames, imagej=True, resolution=(1 / 0.4, 1 / 0.5), metadata={"axes": "ZYX", "unit": "um"})
    assert tiff_stack(imagej, "microscopy").pixel_size == (pytest.approx(0.5), pytest.approx(0.4))
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(cm, frames[0], resolution=(1e4 / 0.3, 1e4 / 0.3), resolutionunit="CENTIMETER")
    assert pixel_size_of(cm, Camera.get("microscopy")) == (pytest.approx(0.3), pytest.approx(0.3))
    inch = tmp_path / "inch.tif"
    tifffile.imwrite(inch, frames[0], resolution=(72, 72), resolutionunit="INCH")  # a screen default, not a calibration
    assert pixel_size_of(inch, Camera.get("microscopy")) == (MICRO_PIXEL, MICRO_PIXEL)
    assert pixel_size_of(inch, Camera.get("drone")) is None  # no calibration, a camera without a pixel size
    single = read_raw_layers(write_raw(tmp_path / "one.tiff", frames[0] / 65535.0, "microscopy"))[0][1]
    assert single["scale"] == (MICRO_PIXEL, MICRO_PIXEL) and single["units"] == ("µm", "µm") and "axis_labels" not in single


def test_a_folder_of_raw_files_is_a_stack(tmp_path, frames):
    folder = tmp_path / "cells"
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_raw(folder / f"img_{i}.tiff", frame / 65535.0, "microscopy")
    (folder / "notes.txt").write_text("not a raw file")
    stack = folder_stack(folder)
    assert stack.frames.shape == (3, 8, 6) and _is_lazy_per_frame(stack.frames, 3) and stack.axes == ("file", "y", "x")
    assert stack.name == "cells" and stack.pixel_size == (MICRO_PIXEL, MICRO_PIXEL)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(stack.frames[i]), read_raw(folder / f"img_{i}.tiff").mosaic.astype(np.float32))
    write_raw(folder / "img_3.tiff", np.zeros((4, 6)), "microscopy")  # another shape: refused when read
    stack = folder_stack(folder)
    with pytest.raises(InputError, match=r"img_3\.tiff has shape \(4, 6\), but the archive's images are \(8, 6\)"):
        np.asarray(stack.frames[3])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \.tif, \.tiff, \.dng files"):
        read_raw_layers(empty)


def test_hostile_stacks_are_refused_with_the_reason(tmp_path, frames, monkeypatch):
    floats = tmp_path / "floats.tif"
    tifffile.imwrite(floats, frames.astype(np.float32), photometric="minisblack")
    with pytest.raises(RawFormatError, match=r"holds unsigned integers .* found float32 frames"):
        tiff_stack(floats, "microscopy")
    odd = tmp_path / "odd.tif"
    tifffile.imwrite(odd, frames[:, :7, :5], photometric="minisblack")
    with pytest.raises(RawFormatError, match="whole 2×2 CFA blocks; its frames are 7×5"):
        tiff_stack(odd, "microscopy")
    twelve_bit = Camera(name="twelve", bit_depth=12, container_bits=12)
    with pytest.raises(RawFormatError, match=r"frame 0 holds values up to \d+, above the white level 4095"):
        tiff_stack(_pages(tmp_path / "big.tif", frames), twelve_bit)
    late = frames.copy()
    late[:2] //= 16  # frames 0 and 1 fit 12 bits, frame 2 does not: refused when it is read
    stack = tiff_stack(_pages(tmp_path / "late.tif", late), twelve_bit)
    np.asarray(stack.frames[1])
    with pytest.raises(RawFormatError, match="frame 2 holds values up to"):
        np.asarray(stack.frames[2])
    monkeypatch.setattr(stacks, "MAX_PIXELS", 47)
    with pytest.raises(RawFormatError, match="frames of 8×6 exceed the 47 pixels"):
        tiff_stack(_pages(tmp_path / "pages.tif", frames), "microscopy")
    monkeypatch.undo()

    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 4)  # a TIFF header, then nonsense: read_raw's refusal, not tifffile's
    with pytest.raises(RawFormatError, match=r"garbage\.tif"):
        read_raw_layers(garbage, camera="microscopy")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(_pages(tmp_path / "whole.tif", frames).read_bytes()[:-40])
    with pytest.raises(RawFormatError, match=r"truncated\.tif"):
        np.asarray(read_raw_layers(truncated, camera="microscopy")[0][0])
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((8, 6, 3), np.uint16), photometric="rgb")  # interleaved samples: an RGB image
    with pytest.raises(RawFormatError, match="one sample per pixel, found 3"):
        read_raw_layers(rgb, camera="microscopy")


def test_a_broken_calibration_falls_back_to_the_camera(tmp_path, frames):
    path = tmp_path / "broken.ome.tif"
    tifffile.imwrite(path, frames, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": -1, "PhysicalSizeY": "nan"})
    assert tiff_stack(path, "microscopy").pixel_size == (MICRO_PIXEL, MICRO_PIXEL)
    assert stacks._ome_pixel_size("<OME><Pixels PhysicalSizeX='1' PhysicalSizeY='2'") is None  # not XML
    assert stacks._ome_pixel_size("<OME><Pixels PhysicalSizeX='1' PhysicalSizeY='2' PhysicalSizeXUnit='parsec'/></OME>") is None
    assert stacks._ome_pixel_size("<OME><Pixels PhysicalSizeX='1' PhysicalSizeY='2' PhysicalSizeXUnit='mm'/></OME>") == (2.0, 1000.0)


def _pages(path, frames):
    with tifffile.TiffWriter(path) as writer:
        for frame in frames:
            writer.write(frame, photometric="minisblack", metadata=None)
    return path
