"""Loaders of the published layout, tested on synthetic data written in that layout."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from ispkit.cli import main
from ispkit.data import grouped_stratified_kfold
from ispkit.data.published import INTENSITIES, RawDroneClassification, RawDroneSegmentation, RawMicroscopy, intensity_folder
from ispkit.data.synthesize import synthesize_drone, synthesize_microscopy
from ispkit.errors import InputError, RawFormatError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets")
    synthesize_microscopy(out, n=30, seed=2, size=64, intensities=(1.0, 0.1))
    synthesize_drone(out, n_frames=2, seed=2, height=512, width=768, cars_per_frame=6, intensities=(1.0, 0.01))
    return out


def test_layout_is_the_published_one(root):
    base = root / "microscopy"
    assert (base / "SYNTHETIC.txt").read_text().startswith("Synthetic data written by ispkit")
    lines = (base / "labels" / "Ma190c_annotations.dat").read_text().splitlines()
    assert len(lines) == 30 and all(len(line.split()) == 2 for line in lines)
    stem, _ = lines[0].split()
    assert stem.startswith("Synth_lame1_zone1_composite_Mcropped_")
    for folder in ("raw_scale100", "raw_scale010"):
        page = tifffile.imread(base / "images" / folder / f"{stem}.tiff")
        assert page.dtype == np.uint16 and page.shape == (64, 64)
    assert sorted(p.name for p in (root / "drone" / "masks_full").iterdir()) == ["synth_frame_01.png", "synth_frame_02.png"]
    assert (root / "drone" / "images_full" / "raw_scale001" / "synth_frame_02.tiff").exists()


def test_microscopy_items(root):
    full, dim = RawMicroscopy(root, 1.0, min_samples=1), RawMicroscopy(root, 0.1, min_samples=1)
    assert len(full) == 30 and full.synthetic and full.camera.name == "microscopy"
    raw, label = full[0]
    assert raw.shape == (1, 64, 64) and raw.dtype == torch.float32 and 0 <= raw.min() and raw.max() <= 1
    assert full.classes[label] == (root / "microscopy" / "labels" / "Ma190c_annotations.dat").read_text().split()[1]
    black = full.camera.black_level[0]
    assert float(dim[0][0].mean() - black) == pytest.approx(0.1 * float(full[0][0].mean() - black), rel=0.05)
    assert len(set(full.groups)) < 30  # crops share slide zones
    folds = grouped_stratified_kfold(full.groups, full.labels, n_splits=3)
    assert all(not set(np.asarray(full.groups)[tr]) & set(np.asarray(full.groups)[te]) for tr, te in folds)


def test_rare_classes_are_dropped_like_the_released_loader(root):
    kept = RawMicroscopy(root, 1.0, min_samples=5)
    counts = np.bincount(kept.labels, minlength=len(kept.classes))
    assert counts.min() >= 5 and len(kept) < 30


def test_drone_tiles(root):
    seg = RawDroneSegmentation(root)
    assert seg.synthetic and len(seg) >= 2 and set(seg.groups) <= {"synth_frame_01", "synth_frame_02"}
    raw, mask = seg[0]
    assert raw.shape == mask.shape == (1, 256, 256) and mask.max() == 1.0
    cls = RawDroneClassification(root, intensity=0.01)
    assert set(cls.labels.tolist()) == {0, 1} and cls.classes == ["no car", "car"]
    fractions = [float(RawDroneSegmentation(root)._masks[f][r : r + 256, c : c + 256].mean()) for f, r, c in cls.index]
    assert all((f > 0.01) == bool(label) and (f > 0.01 or f == 0) for f, label in zip(fractions, cls.labels, strict=True))


def test_resume_keeps_existing_files(root):
    path = root / "microscopy" / "images" / "raw_scale100"
    before = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    victim = sorted(path.iterdir())[3]
    victim.unlink()
    synthesize_microscopy(root, n=30, seed=2, size=64, intensities=(1.0, 0.1))
    after = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[k] == before[k] for k in before if k != victim.name)


def test_other_settings_in_the_same_folder_are_refused(root):
    with pytest.raises(InputError, match="already holds a dataset written with other settings"):
        synthesize_microscopy(root, n=31, seed=2, size=64, intensities=(1.0, 0.1))


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Download Zenodo record 5235536.*ispkit data synth"):
        RawMicroscopy(tmp_path)


def test_bad_annotation_line(root, tmp_path):
    import shutil

    shutil.copytree(root / "microscopy", tmp_path / "microscopy")
    labels = tmp_path / "microscopy" / "labels" / "Ma190c_annotations.dat"
    labels.write_text(labels.read_text() + "only-one-field\n")
    with pytest.raises(RawFormatError, match=r"Ma190c_annotations.dat:31: expected '<stem> <CLASS>'"):
        RawMicroscopy(tmp_path)


def test_intensities():
    assert [intensity_folder(i) for i in INTENSITIES] == [
        "raw_scale100", "raw_scale075", "raw_scale050", "raw_scale025", "raw_scale010", "raw_scale005", "raw_scale001",
    ]  # fmt: skip
    with pytest.raises(InputError, match=r"intensity 0\.001 was not published.*scale_exposure"):
        intensity_folder(0.001)


def test_cli_synth(tmp_path, capsys):
    assert main(["data", "synth", "drone", "--out", str(tmp_path), "--n", "1", "--seed", "4"]) == 0
    assert "drone: 1/1" in capsys.readouterr().out
    assert len(list((tmp_path / "drone" / "images_full").glob("*/*.tiff"))) == len(INTENSITIES)


def test_parallel_writing_gives_the_same_files(tmp_path):
    one = synthesize_microscopy(tmp_path / "one", n=6, seed=9, size=64, intensities=(1.0, 0.5), workers=1)
    two = synthesize_microscopy(tmp_path / "two", n=6, seed=9, size=64, intensities=(1.0, 0.5), workers=2)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 6 * 2 + 2
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def _synthesize_in_a_daemon(out):
    synthesize_microscopy(out, n=3, seed=9, size=64, intensities=(1.0,), workers=2)


def test_a_daemonic_process_writes_in_process(tmp_path):
    """Daemonic processes (multiprocessing or Dask workers) may not start a process pool: the jobs run in process."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=_synthesize_in_a_daemon, args=(tmp_path,), daemon=True)
    process.start()
    process.join(120)
    assert process.exitcode == 0
    assert len(list((tmp_path / "microscopy").rglob("*.tiff"))) == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda out: synthesize_microscopy(out, n=0), "n must be at least 1, got 0"),
        (lambda out: synthesize_drone(out, n_frames=0), "n_frames must be at least 1, got 0"),
        (lambda out: synthesize_microscopy(out, n=2, intensities=(1.0, 0.001)), "intensity 0.001 was not published"),
    ],
)
def test_bad_requests(tmp_path, call, message):
    with pytest.raises(InputError, match=message):
        call(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written
