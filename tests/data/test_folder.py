"""Datasets of your own raw files: class sub-folders, CSV manifests, masks, and the errors each mistake gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from rawfolders import LAB_CAMERA, PHOTOS, natural_raws, write_class_folders, write_manifest

from ispkit.data import RawFolder, RawFolderSegmentation, grouped_stratified_kfold
from ispkit.data.folder import scan_raw_folder
from ispkit.errors import ConfigError, InputError, RawFormatError
from ispkit.io import read_raw, write_raw


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return write_class_folders(tmp_path_factory.mktemp("classes"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("manifest"))


def test_class_folders_give_classes_labels_groups_and_the_files_camera(folders):
    data = RawFolder(folders)
    assert data.classes == sorted(PHOTOS) == ["chelsea", "coffee", "rocket"]
    assert data.labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    # a sub-folder of a class folder names the group, across classes: the left halves of all photographs are one source
    assert data.groups == (["left"] * 4 + ["right"] * 4) * 3
    assert data.camera == LAB_CAMERA and data.shape == (32, 32) and len(data) == 24 and not data.synthetic
    raw, label = data[9]
    assert raw.dtype == torch.float32 and raw.shape == (1, 32, 32) and label == 1
    np.testing.assert_array_equal(raw[0].numpy(), read_raw(folders / "coffee" / "left" / "1.tiff").mosaic.astype(np.float32))
    folds = grouped_stratified_kfold(data.groups, data.labels, n_splits=2)
    assert sorted({data.groups[i] for i in folds[0][1]} | {data.groups[i] for i in folds[1][1]}) == ["left", "right"]


def test_files_directly_in_a_class_folder_are_each_their_own_group_and_other_files_are_skipped(tmp_path):
    for i, photo in enumerate(PHOTOS[:2]):
        for k, raw in enumerate(natural_raws(photo, 2, seed=i)):
            write_raw(tmp_path / photo / f"{k}.tif", raw, LAB_CAMERA)
    (tmp_path / "README.txt").write_text("my cells")  # not a raw file: skipped
    (tmp_path / "coffee" / "notes.csv").write_text("x")
    (tmp_path / "coffee" / ".hidden").mkdir()
    write_raw(tmp_path / "coffee" / ".hidden" / "x.tif", natural_raws("coffee", 2)[0], LAB_CAMERA)
    data = RawFolder(tmp_path)
    assert data.groups == ["chelsea/0.tif", "chelsea/1.tif", "coffee/0.tif", "coffee/1.tif"]
    assert [p.relative_to(tmp_path).as_posix() for p in data.paths] == data.groups


def test_a_manifest_gives_the_same_dataset_with_its_own_groups(manifest):
    data = RawFolder(manifest)
    assert data.classes == ["chelsea", "coffee", "rocket"] and len(data) == 24
    assert data.labels.tolist() == [1] * 8 + [0] * 8 + [2] * 8  # the manifest's order
    assert data.groups[:5] == ["coffee-left"] * 4 + ["coffee-right"]
    raw, label = data[8]
    assert label == 0 and raw.shape == (1, 32, 32)
    np.testing.assert_array_equal(raw[0].numpy(), read_raw(manifest.parent / "files" / "chelsea_00.tiff").mosaic.astype(np.float32))


def test_a_manifest_with_quotes_a_bom_blank_lines_and_extra_columns(tmp_path):
    raws = natural_raws("coffee", 2)
    write_raw(tmp_path / "a, b.tiff", raws[0], LAB_CAMERA)
    write_raw(tmp_path / "sub" / "c.tiff", raws[1], LAB_CAMERA)
    text = '\ufeffnotes,path,label\n"first, one","a, b.tiff",cat\n\n  ,sub/c.tiff , dog \n'
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    data = RawFolder(tmp_path / "m.csv")
    assert data.classes == ["cat", "dog"] and data.groups == ["a, b.tiff", "sub/c.tiff"]
    assert [p.name for p in data.paths] == ["a, b.tiff", "c.tiff"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the manifest is empty; expected a header row with the columns path, label, group"),
        (
            "file,label\nx.tiff,cat\n",
            1,
            r"the header lacks the column\(s\) path: a classification manifest has the columns path, label .* found 'file', 'label'",
        ),
        ("path,label,path\n", 1, "column 'path' appears twice"),
        ("path,label\n", None, "the manifest has a header but no rows"),
        ("path,label\nfiles/a.tiff,cat\nfiles/b.tiff,dog,extra\n", 3, r"the row has 3 field\(s\), the header 2"),
        ("path,label\nfiles/a.tiff,cat\nfiles/b.tiff,\n", 3, "empty label"),
        ("path,label,group\nfiles/a.tiff,cat,\n", 2, "empty group"),
        ("path,label\nfiles/a.tiff,cat\n\nfiles/missing.tiff,dog\n", 4, r"raw file 'files/missing.tiff' not found \(looked for .*files/missing.tiff\)"),
        ("path,label\nfiles/a.tiff,cat\nfiles/../files/a.tiff,dog\n", 3, r"raw file 'files/../files/a.tiff' is listed twice \(first at line 2\)"),
        ('path,label\n"files/a.tiff,cat\n', 2, "not readable as CSV: unexpected end of data"),
        ('path,label\n"files/a"b.tiff,cat\n', 2, "not readable as CSV: ',' expected after '\"'"),
    ],
)
def test_manifest_mistakes_are_config_errors_at_the_csv_line(tmp_path, text, line, message):
    write_raw(tmp_path / "files" / "a.tiff", natural_raws("coffee", 2)[0], LAB_CAMERA)
    write_raw(tmp_path / "files" / "b.tiff", natural_raws("coffee", 2)[1], LAB_CAMERA)
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        scan_raw_folder(tmp_path / "m.csv", "classification")
    assert info.value.source == str(tmp_path / "m.csv") and info.value.line == line


def test_a_manifest_that_is_not_text_names_the_line_of_the_first_bad_byte(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"path,label\nx.tiff,caf\xe9\n")
    with pytest.raises(ConfigError, match=r"m.csv:2: a manifest is UTF-8 CSV text"):
        RawFolder(tmp_path / "m.csv")


def test_a_folder_that_is_not_a_class_layout_is_refused_naming_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"raw folder or manifest .*nowhere not found"):
        RawFolder(tmp_path / "nowhere")
    with pytest.raises(InputError, match="has no class folders: expected root/<class>/"):
        RawFolder(tmp_path)
    raw = natural_raws("coffee", 2)[0]
    write_raw(tmp_path / "cat" / "a.tiff", raw, LAB_CAMERA)
    with pytest.raises(InputError, match=r"needs at least two classes, found \['cat'\]"):
        RawFolder(tmp_path)
    (tmp_path / "dog").mkdir()
    with pytest.raises(InputError, match=r"class folder .*dog holds no raw files"):
        RawFolder(tmp_path)
    write_raw(tmp_path / "dog" / "b.dng.tif", raw, LAB_CAMERA)
    write_raw(tmp_path / "loose.TIFF", raw, LAB_CAMERA)
    with pytest.raises(InputError, match=r"loose.TIFF is not in a class folder"):
        RawFolder(tmp_path)


def test_files_must_share_size_and_camera_and_the_error_names_both_files(tmp_path):
    raws = natural_raws("coffee", 4)
    write_raw(tmp_path / "a" / "1.tiff", raws[0], LAB_CAMERA)
    write_raw(tmp_path / "b" / "2.tiff", raws[1], replace(LAB_CAMERA, pattern="RGGB", black_level=(0.02,) * 4))
    write_raw(tmp_path / "b" / "3.tiff", raws[2][:16, :30], LAB_CAMERA)
    data = RawFolder(tmp_path)
    assert data[0][0].shape == (1, 32, 32)
    with pytest.raises(RawFormatError) as info:
        data[1]
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'b' / '2.tiff'} and {tmp_path / 'a' / '1.tiff'} carry different cameras: pattern ('RGGB' vs 'GRBG'); black_level")
    assert "give one camera for all (dataset.camera in an experiment, camera= in Python)" in message
    with pytest.raises(RawFormatError, match=r"3.tiff: mosaic 16×30, but .*1.tiff \(the dataset's first file\) is 32×32"):
        data[2]
    # one camera for all: the files' own are overridden, sizes are still checked
    given = RawFolder(tmp_path, camera="microscopy")
    assert given.camera.name == "microscopy" and given[1][0].shape == (1, 32, 32)
    with pytest.raises(RawFormatError, match="mosaic 16×30"):
        given[2]


def test_files_without_a_camera_need_one_given(tmp_path):
    raws = natural_raws("coffee", 2)
    for name, raw in zip(("a/1.tiff", "b/2.tiff"), raws, strict=True):
        (tmp_path / name).parent.mkdir()
        tifffile.imwrite(tmp_path / name, np.round(raw * 65535).astype(np.uint16))  # a bare TIFF, as most tools write
    with pytest.raises(RawFormatError, match=r"1.tiff carries no camera metadata"):
        RawFolder(tmp_path)
    data = RawFolder(tmp_path, camera=LAB_CAMERA)
    assert data.camera == LAB_CAMERA and data[1][1] == 1


# -- segmentation -------------------------------------------------------------------------


def _segmentation_folder(root, n=3):
    """Raw files with masks of a bright region: 0/255 PNG, 0/1 TIFF, 0/1 palette PNG."""
    masks = []
    for i, raw in enumerate(natural_raws("rocket", n)):
        write_raw(root / f"f{i}.tiff", raw, LAB_CAMERA)
        mask = (raw > np.median(raw)).astype(np.uint8)
        (root / "masks").mkdir(exist_ok=True)
        if i % 3 == 0:
            Image.fromarray(mask * 255).save(root / "masks" / f"f{i}.png")
        elif i % 3 == 1:
            tifffile.imwrite(root / "masks" / f"f{i}.tif", mask)
        else:
            image = Image.fromarray(mask, mode="L").convert("P")
            image.save(root / "masks" / f"f{i}.png")
        masks.append(mask)
    return masks


def test_segmentation_folder_reads_masks_of_each_format(tmp_path):
    masks = _segmentation_folder(tmp_path)
    data = RawFolderSegmentation(tmp_path)
    assert len(data) == 3 and data.groups == ["f0.tiff", "f1.tiff", "f2.tiff"] and not hasattr(data, "classes")
    for i, mask in enumerate(masks):
        raw, target = data[i]
        assert raw.shape == target.shape == (1, 32, 32) and target.dtype == torch.float32
        np.testing.assert_array_equal(target[0].numpy(), mask.astype(np.float32))
    # grey with an alpha channel, and grey saved as RGB, are masks too
    Image.fromarray(np.stack([masks[0] * 255, np.full((32, 32), 255, np.uint8)], axis=-1), mode="LA").save(tmp_path / "masks" / "f0.png")
    np.testing.assert_array_equal(data[0][1][0].numpy(), masks[0])
    Image.fromarray(np.repeat(masks[0][..., None] * 255, 3, axis=-1)).save(tmp_path / "masks" / "f0.png")
    np.testing.assert_array_equal(data[0][1][0].numpy(), masks[0])


def test_segmentation_manifest_with_and_without_a_mask_column(tmp_path):
    masks = _segmentation_folder(tmp_path)
    (tmp_path / "own").mkdir()
    Image.fromarray(1 - masks[0]).save(tmp_path / "own" / "inverse.png")
    (tmp_path / "with.csv").write_text("path,mask,group\nf0.tiff,own/inverse.png,scene-1\nf1.tiff,masks/f1.tif,scene-1\n")
    data = RawFolderSegmentation(tmp_path / "with.csv")
    assert data.groups == ["scene-1", "scene-1"]
    np.testing.assert_array_equal(data[0][1][0].numpy(), 1 - masks[0])
    (tmp_path / "without.csv").write_text("path\nf2.tiff\n")
    np.testing.assert_array_equal(RawFolderSegmentation(tmp_path / "without.csv")[0][1][0].numpy(), masks[2])


def test_segmentation_mistakes(tmp_path):
    _segmentation_folder(tmp_path)
    (tmp_path / "masks" / "f1.tif").unlink()
    with pytest.raises(InputError, match=r"no mask for .*f1.tiff: expected one of f1.png, f1.tif, f1.tiff in .*masks"):
        RawFolderSegmentation(tmp_path)
    (tmp_path / "m.csv").write_text("path\nf0.tiff\nf1.tiff\n")
    with pytest.raises(ConfigError, match=r"m.csv:3: no mask for .*f1.tiff"):
        RawFolderSegmentation(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("path,mask\nf0.tiff,gone.png\n")
    with pytest.raises(ConfigError, match=r"m.csv:2: mask 'gone.png' not found"):
        RawFolderSegmentation(tmp_path / "m.csv")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "masks" / "f1.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "masks" / "f1.tiff")
    with pytest.raises(InputError, match=r"two masks for .*f1.tiff .*: f1.png and f1.tiff; keep one"):
        RawFolderSegmentation(tmp_path)
    (tmp_path / "masks" / "f1.tiff").unlink()
    data = RawFolderSegmentation(tmp_path)
    bad = {
        "f0.png": (np.full((32, 30), 255, np.uint8), r"is 32×30, but its raw file is 32×32"),
        "f1.png": (np.array([[0, 128], [255, 3]], np.uint8).repeat(16, 0).repeat(16, 1), r"holds the values 0, 3, 128, 255; expected 0/1 or 0/255"),
        "f2.png": (np.stack([np.full((32, 32), 255, np.uint8), np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)], axis=-1), "has colour"),
    }
    for i, (name, (pixels, message)) in enumerate(bad.items()):
        Image.fromarray(pixels).save(tmp_path / "masks" / name)
        with pytest.raises(RawFormatError, match=message):
            data[i]
    (tmp_path / "masks" / "f0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(RawFormatError, match=r"mask .*f0.png is not a readable PNG image"):
        data[0]


def test_the_task_is_checked():
    with pytest.raises(InputError, match="task must be one of"):
        scan_raw_folder(".", "detection")
