"""DNG: finding the CFA image among IFDs and SubIFDs, and the camera its tags describe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ..camera import Camera
from ..errors import InputError, RawFormatError
from .tiff import _name, _numbers

# TIFF and DNG tag codes and values (TIFF 6.0, TIFF/EP, DNG 1.4 specification).
_CFA = 32803  # PhotometricInterpretation: colour filter array
_LINEAR_RAW = 34892  # PhotometricInterpretation: demosaiced ("linear") DNG
_CFA_REPEAT_DIM = 33421
_CFA_PATTERN = 33422
_DNG_VERSION = 50706
_UNIQUE_CAMERA_MODEL = 50708
_CFA_PLANE_COLOR = 50710
_CFA_LAYOUT = 50711
_LINEARIZATION_TABLE = 50712
_BLACK_REPEAT_DIM = 50713
_BLACK_LEVEL = 50714
_BLACK_DELTA_H = 50715
_BLACK_DELTA_V = 50716
_WHITE_LEVEL = 50717
_AS_SHOT_NEUTRAL = 50728
_ACTIVE_AREA = 50829


@dataclass(frozen=True)
class _DngTags:
    pattern: str
    white: float | None
    black: list[float] | None
    black_dim: list[float] | None
    deltas: bool
    model: str | None
    neutral: list[float] | None


def _dng_raw_page(tif: tifffile.TiffFile, path: Path) -> tifffile.TiffPage:
    pages = []
    for top in tif.pages:
        pages.append(top)
        if top.subifds:
            pages.extend(top.pages)
    for page in pages:
        if page.photometric == _CFA and page.subfiletype == 0:
            return page
    if any(page.photometric == _LINEAR_RAW for page in pages):
        raise RawFormatError(
            f"{path}: a linear DNG (PhotometricInterpretation 34892, LinearRaw) holds demosaiced data; "
            "read_raw supports CFA (Bayer) DNGs only"
        )
    found = ", ".join(f"{_name(p.photometric)}/NewSubFileType {int(p.subfiletype)}" for p in pages)
    raise RawFormatError(
        f"{path}: this DNG has no full-resolution CFA image (expected an IFD or SubIFD with "
        f"PhotometricInterpretation 32803 and NewSubFileType 0); found {found}"
    )


def _dng_tags(first: tifffile.TiffPage, page: tifffile.TiffPage, path: Path) -> _DngTags:
    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    dim = _numbers(path, page, _CFA_REPEAT_DIM)
    if dim is None:
        raise bad("the CFA image has no CFARepeatPatternDim (tag 33421)")
    if dim != [2.0, 2.0]:
        raise bad(f"CFARepeatPatternDim is {tuple(int(v) for v in dim)}; read_raw supports 2×2 Bayer patterns only")
    codes = _numbers(path, page, _CFA_PATTERN)
    if codes is None or len(codes) != 4:
        raise bad(f"CFAPattern (tag 33422) must hold 4 values for a 2×2 pattern, got {codes}")
    planes = _numbers(path, page, _CFA_PLANE_COLOR, first) or [0.0, 1.0, 2.0]
    layout = _numbers(path, page, _CFA_LAYOUT, first)
    if layout is not None and layout != [1.0]:
        raise bad(f"CFALayout is {int(layout[0])}; only the rectangular layout (1) is supported")
    if page.tags.get(_LINEARIZATION_TABLE) is not None:
        raise bad("LinearizationTable (tag 50712) is not supported")
    try:
        pattern = "".join("RGB"[int(planes[int(c)])] for c in codes)
    except IndexError:
        raise bad(
            f"CFAPattern {tuple(int(c) for c in codes)} with CFAPlaneColor {planes} names colours other than R, G, B"
        ) from None
    if pattern not in ("RGGB", "BGGR", "GRBG", "GBRG"):
        raise bad(f"CFAPattern {tuple(int(c) for c in codes)} is {pattern}, not a Bayer layout")
    white = _numbers(path, page, _WHITE_LEVEL, first)
    deltas = any(any(v != 0 for v in (_numbers(path, page, code) or [])) for code in (_BLACK_DELTA_H, _BLACK_DELTA_V))
    model_tag = first.tags.get(_UNIQUE_CAMERA_MODEL)
    model = str(model_tag.value).strip() if model_tag is not None else None
    return _DngTags(
        pattern=pattern,
        white=None if white is None else white[0],
        black=_numbers(path, page, _BLACK_LEVEL, first),
        black_dim=_numbers(path, page, _BLACK_REPEAT_DIM, first),
        deltas=deltas,
        model=model or None,
        neutral=_numbers(path, first, _AS_SHOT_NEUTRAL),
    )


def _active_area(data: np.ndarray, page: tifffile.TiffPage, path: Path) -> np.ndarray:
    area = _numbers(path, page, _ACTIVE_AREA)
    if area is None:
        return data
    if len(area) != 4:
        raise RawFormatError(f"{path}: ActiveArea must hold top, left, bottom, right; got {area}")
    top, left, bottom, right = (int(v) for v in area)
    h, w = data.shape[-2:]
    if not (0 <= top < bottom <= h and 0 <= left < right <= w):
        raise RawFormatError(f"{path}: ActiveArea {(top, left, bottom, right)} lies outside the {h}×{w} raw image")
    if top % 2 or left % 2:
        raise RawFormatError(
            f"{path}: unsupported DNG: ActiveArea {(top, left, bottom, right)} starts on an odd row or column, "
            "which shifts the CFA pattern"
        )
    return data[..., top:bottom, left:right]


def _dng_camera(tags: _DngTags, bits: int, path: Path) -> Camera:
    def bad(message: str) -> RawFormatError:
        return RawFormatError(f"{path}: unsupported DNG: {message}")

    white = 2**bits - 1 if tags.white is None else tags.white
    if white != int(white) or not 1 <= white <= 2**bits - 1:
        raise bad(f"WhiteLevel {white:g} does not fit BitsPerSample {bits}")
    container = int(white).bit_length()
    scale = 2**container - 1
    black = tags.black or [0.0]
    rows, cols = (int(v) for v in (tags.black_dim or [1.0, 1.0]))
    if rows not in (1, 2) or cols not in (1, 2) or len(black) != rows * cols:
        raise bad(f"BlackLevel {black} with BlackLevelRepeatDim {(rows, cols)}: expected 1, 2 or 4 values repeating over 2×2")
    if tags.deltas:
        raise bad("non-zero BlackLevelDeltaH/V (per-column or per-row black levels) are not supported")
    sites = tuple(black[(r % rows) * cols + c % cols] / scale for r in (0, 1) for c in (0, 1))
    balance = (1.0, 1.0, 1.0)
    if tags.neutral is not None and len(tags.neutral) == 3 and all(v > 0 for v in tags.neutral):
        r, g, b = tags.neutral
        balance = (g / r, 1.0, g / b)
    description = (
        f"from the DNG tags of {path.name}: BitsPerSample {bits}, WhiteLevel {white:g}, "
        f"BlackLevel {[float(v) for v in black]}"
    )
    try:
        return Camera(
            name=tags.model or path.stem,
            pattern=tags.pattern,
            bit_depth=container,
            container_bits=container,
            black_level=sites,
            white_balance=balance,
            description=description,
        )
    except InputError as exc:
        raise bad(str(exc)) from exc


