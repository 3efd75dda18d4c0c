"""The DNG colour model: camera RGB → CIE XYZ (D50) → linear sRGB, as the DNG specification defines it.

A DNG file describes its camera's colour with matrices measured under one or two
calibration illuminants (ColorMatrix1/2: XYZ → camera, ForwardMatrix1/2: white-balanced
camera → XYZ D50, CameraCalibration1/2 and AnalogBalance for the individual camera) and
the white it was shot under (AsShotNeutral or AsShotWhiteXY). Chapter 6 of the
specification, "Mapping Camera Color Space to CIE XYZ Space", says how a reader
combines them; :class:`ColorCalibration` implements that chapter and :func:`render`
turns it into the two things an ispkit pipeline needs:

- ``white_balance``: the gains of the ``white_balance`` stage, ``1 / neutral`` with green 1;
- ``color_matrix``: the ``color_correction`` matrix that maps the white-balanced camera
  RGB to linear sRGB (IEC 61966-2-1 primaries, D65 white), so that the two stages
  together are the camera → linear sRGB transform of the specification followed by a
  Bradford adaptation from D50 (the DNG profile connection space) to D65.

The steps (DNG specification 1.4.0.0, June 2012, chapter 6; unchanged for two
illuminants in 1.6.0.0, 2021), as the Adobe DNG SDK (``dng_color_spec.cpp``) carries them out:

1. *Interpolation* ("Translating White Balance xy Coordinates to Camera Neutral
   Coordinates"): each matrix is interpolated between its two calibration illuminants
   linearly in inverse correlated colour temperature, ``g = (1/T - 1/T₂) / (1/T₁ - 1/T₂)``
   clipped to [0, 1] (``T₁ < T₂``); the temperatures of the illuminants are those of
   their EXIF LightSource codes (:data:`ILLUMINANT_TEMPERATURES`). One matrix, or an
   illuminant of unknown temperature, means the first matrices are used alone.
   ``XYZtoCamera = AB · CC · CM``.
2. *Neutral → white xy* ("Translating Camera Neutral Coordinates to White Balance xy
   Coordinates"): the white depends on the matrices, which depend on the white's
   temperature, so the spec iterates from D50: ``xy ← xy(XYZtoCamera(xy)⁻¹ · neutral)``
   until it moves less than 1e-7 (:meth:`ColorCalibration.neutral_to_xy`).
3. *Camera → XYZ D50* ("Camera to XYZ (D50) Transform"): with ForwardMatrix,
   ``FM · D · (AB · CC)⁻¹`` where ``D`` maps the reference neutral to (1, 1, 1);
   without, the inverse of ``XYZtoCamera · CA`` with ``CA`` the (linear) Bradford
   adaptation from D50 to the white, scaled so that D50 is reached just as the first
   camera channel saturates (:meth:`ColorCalibration.camera_to_xyz_d50`).
4. XYZ D50 → D65 by Bradford, then XYZ → linear sRGB (:data:`SRGB_FROM_XYZ`).

The camera white (the neutral scaled to a largest channel of 1) thus maps to sRGB
(1, 1, 1). Correlated colour temperature follows Robertson (1968), as the SDK does
(:func:`correlated_color_temperature`). Not modelled: the triple-illuminant profiles of
DNG 1.6 (ColorMatrix3, read with the first two illuminants only), ReductionMatrix
(cameras with more than three colours), and the rendering hints applied after the
matrix (HueSatMap, LookTable, tone curve, BaselineExposure, which a caller may apply as
a gain ``2**BaselineExposure``).

References
----------
Adobe Systems, *Digital Negative (DNG) Specification*, version 1.4.0.0 (2012), chapter 6,
and version 1.6.0.0 (2021). A. R. Robertson, "Computation of correlated color
temperature and distribution temperature", JOSA 58 (1968) 1528–1535; isotemperature lines
from G. Wyszecki and W. S. Stiles, *Color Science* (2nd ed., 1982), Table 1(3.11).
K. M. Lam, "Metamerism and colour constancy" (PhD thesis, Bradford, 1985) for the
Bradford matrix. IEC 61966-2-1:1999 (sRGB).

Examples
--------
>>> round(correlated_color_temperature(D65_XY))        # D65's xy is about 6504 K
6504
>>> d50, d65 = xyz_to_xy([0.96422, 1.0, 0.82521]), xyz_to_xy([0.95047, 1.0, 1.08883])  # ASTM E308 whites
>>> bradford(d50, d65).round(7)                        # Lindbloom's published Bradford D50 → D65 matrix
array([[ 0.9555766, -0.0230393,  0.0631636],
       [-0.0282895,  1.0099416,  0.0210077],
       [ 0.0122982, -0.020483 ,  1.3299098]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

__all__ = [
    "D50_XY",
    "D55_XY",
    "D65_XY",
    "BRADFORD",
    "SRGB_FROM_XYZ",
    "ILLUMINANT_TEMPERATURES",
    "xy_to_xyz",
    "xyz_to_xy",
    "correlated_color_temperature",
    "bradford",
    "illuminant_temperature",
    "ColorCalibration",
    "DngColor",
    "render",
]

D50_XY = np.array([0.3457, 0.3585])
"""CIE D50, the DNG profile connection space white, as the DNG SDK writes it."""

D55_XY = np.array([0.3324, 0.3474])
"""CIE D55, the white the DNG SDK renders with when a file gives no as-shot white."""

D65_XY = np.array([0.3127, 0.3290])
"""CIE D65, the sRGB white (IEC 61966-2-1)."""

BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
"""The linearised Bradford cone-response matrix (Lam 1985), the adaptation DNG uses."""

_SRGB_PRIMARIES = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])


def xy_to_xyz(xy: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIE XYZ with ``Y = 1`` of chromaticity ``xy``.

    >>> xy_to_xyz([0.3457, 0.3585]).round(4).tolist()
    [0.9643, 1.0, 0.8251]
    """
    x, y = (float(v) for v in xy)
    if not (np.isfinite(x) and np.isfinite(y)) or y <= 0:
        raise InputError(f"a chromaticity xy needs a finite y > 0, got ({x}, {y})")
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def xyz_to_xy(xyz: Sequence[float] | np.ndarray) -> np.ndarray:
    """Chromaticity ``(x, y)`` of CIE ``XYZ``.

    >>> xyz_to_xy([0.95047, 1.0, 1.08883]).round(4).tolist()
    [0.3127, 0.329]
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    total = float(xyz.sum())
    if not np.all(np.isfinite(xyz)) or total <= 0:
        raise InputError(f"XYZ {xyz.tolist()} has no chromaticity (X + Y + Z must be finite and positive)")
    return xyz[:2] / total


def _srgb_from_xyz() -> np.ndarray:
    """XYZ (D65) → linear sRGB, from the sRGB primaries and white (the RGB → XYZ columns scaled to reach D65)."""
    primaries = np.stack([xy_to_xyz(p) for p in _SRGB_PRIMARIES], axis=1)
    scale = np.linalg.solve(primaries, xy_to_xyz(D65_XY))
    return np.linalg.inv(primaries * scale)


SRGB_FROM_XYZ = _srgb_from_xyz()
"""CIE XYZ (D65, Y = 1 for white) → linear sRGB, derived from the IEC 61966-2-1 primaries and D65.

>>> SRGB_FROM_XYZ.round(4)
array([[ 3.241 , -1.5374, -0.4986],
       [-0.9692,  1.876 ,  0.0416],
       [ 0.0556, -0.204 ,  1.057 ]])
"""

# Robertson (1968): isotemperature lines (reciprocal temperature in mired, u, v, slope), Wyszecki & Stiles Table 1(3.11).
_ROBERTSON = np.array(
    [
        (0, 0.18006, 0.26352, -0.24341), (10, 0.18066, 0.26589, -0.25479), (20, 0.18133, 0.26846, -0.26876),
        (30, 0.18208, 0.27119, -0.28539), (40, 0.18293, 0.27407, -0.30470), (50, 0.18388, 0.27709, -0.32675),
        (60, 0.18494, 0.28021, -0.35156), (70, 0.18611, 0.28342, -0.37915), (80, 0.18740, 0.28668, -0.40955),
        (90, 0.18880, 0.28997, -0.44278), (100, 0.19032, 0.29326, -0.47888), (125, 0.19462, 0.30141, -0.58204),
        (150, 0.19962, 0.30921, -0.70471), (175, 0.20525, 0.31647, -0.84901), (200, 0.21142, 0.32312, -1.0182),
        (225, 0.21807, 0.32909, -1.2168), (250, 0.22511, 0.33439, -1.4512), (275, 0.23247, 0.33904, -1.7298),
        (300, 0.24010, 0.34308, -2.0637), (325, 0.24792, 0.34655, -2.4681), (350, 0.25591, 0.34951, -2.9641),
        (375, 0.26400, 0.35200, -3.5814), (400, 0.27218, 0.35407, -4.3633), (425, 0.28039, 0.35577, -5.3762),
        (450, 0.28863, 0.35714, -6.7262), (475, 0.29685, 0.35823, -8.5955), (500, 0.30505, 0.35907, -11.324),
        (525, 0.31320, 0.35968, -15.628), (550, 0.32129, 0.36011, -23.325), (575, 0.32931, 0.36038, -40.770),
        (600, 0.33724, 0.36051, -116.45),
    ]
)  # fmt: skip


def correlated_color_temperature(xy: Sequence[float] | np.ndarray) -> float:
    """Correlated colour temperature in kelvin of chromaticity ``xy``, by Robertson's method (1968).

    The CIE 1960 ``(u, v)`` of ``xy`` is located between two of the 31 isotemperature
    lines of Wyszecki & Stiles (Table 1(3.11)) by its signed distance to each, and the
    reciprocal temperature is interpolated between them in proportion to the distances,
    as the DNG SDK (``dng_temperature``) does. Chromaticities beyond the table's ends get
    the end lines' temperatures: 10⁶ / 600 ≈ 1667 K at least, 10⁶ / 10 = 100 000 K at most.

    >>> round(correlated_color_temperature([0.3457, 0.3585]))   # D50
    5001
    >>> round(correlated_color_temperature([0.44757, 0.40745]))  # illuminant A, 2856 K
    2856
    """
    x, y = (float(v) for v in xy)
    denominator = 1.5 - x + 6.0 * y
    if not (np.isfinite(x) and np.isfinite(y)) or denominator <= 0:
        raise InputError(f"no colour temperature for chromaticity ({x}, {y})")
    u, v = 2.0 * x / denominator, 3.0 * y / denominator
    mired, line_u, line_v, slope = _ROBERTSON.T
    length = np.sqrt(1.0 + slope**2)
    # Signed distance of (u, v) from each isotemperature line, negative once past it towards lower temperatures.
    distance = ((v - line_v) - (u - line_u) * slope) / length
    past = np.flatnonzero(distance[1:] <= 0.0)
    i = int(past[0]) + 1 if past.size else len(mired) - 1  # (u, v) lies between lines i - 1 and i
    beyond = -min(float(distance[i]), 0.0)
    f = 0.0 if i == 1 else beyond / (float(distance[i - 1]) + beyond)  # weight of line i - 1
    kelvin: float = 1.0e6 / (mired[i - 1] * f + mired[i] * (1.0 - f))
    return kelvin


def bradford(source_xy: Sequence[float] | np.ndarray, target_xy: Sequence[float] | np.ndarray) -> np.ndarray:
    """The linear Bradford chromatic adaptation matrix from white ``source_xy`` to ``target_xy`` (on XYZ).

    ``M⁻¹ · diag(M·w₂ / M·w₁) · M`` with ``M`` = :data:`BRADFORD` and ``w`` the whites'
    XYZ (Y = 1). Raises :class:`~ispkit.errors.InputError` when a white has a
    non-positive cone response, where no adaptation is defined.

    >>> np.allclose(bradford(D50_XY, D65_XY) @ xy_to_xyz(D50_XY), xy_to_xyz(D65_XY))
    True
    """
    source, target = BRADFORD @ xy_to_xyz(source_xy), BRADFORD @ xy_to_xyz(target_xy)
    if np.any(source <= 0) or np.any(target <= 0):
        raise InputError(f"no Bradford adaptation between whites {np.round(source_xy, 4).tolist()} and {np.round(target_xy, 4).tolist()}")
    adaptation: np.ndarray = np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD
    return adaptation


ILLUMINANT_TEMPERATURES: dict[int, float] = {
    1: 5500.0,  # daylight
    2: 4150.0,  # fluorescent (cool white, 3800–4500 K)
    3: 2850.0,  # tungsten
    4: 5500.0,  # flash
    9: 5500.0,  # fine weather
    10: 6500.0,  # cloudy weather
    11: 7500.0,  # shade
    12: 6400.0,  # daylight fluorescent (5700–7100 K)
    13: 5050.0,  # day white fluorescent (4600–5500 K)
    14: 4150.0,  # cool white fluorescent (3800–4500 K)
    15: 3525.0,  # white fluorescent (3250–3800 K)
    16: 2925.0,  # warm white fluorescent (2600–3250 K)
    17: 2850.0,  # standard light A
    18: 5500.0,  # standard light B
    19: 6500.0,  # standard light C
    20: 5500.0,  # D55
    21: 6500.0,  # D65
    22: 7500.0,  # D75
    23: 5000.0,  # D50
    24: 3200.0,  # ISO studio tungsten
}
"""Colour temperature (K) of each EXIF LightSource code a DNG names as CalibrationIlluminant.

The values the DNG SDK uses (``dng_camera_profile::IlluminantToTemperature``): nominal
temperatures, the middle of the range for the fluorescent classes. 0 (unknown) and 255
(other) have none."""


def illuminant_temperature(code: int | None) -> float | None:
    """The temperature of a CalibrationIlluminant code (see :data:`ILLUMINANT_TEMPERATURES`), or ``None``.

    >>> illuminant_temperature(21), illuminant_temperature(0)
    (6500.0, None)
    """
    return None if code is None else ILLUMINANT_TEMPERATURES.get(int(code))


def _matrix(value: np.ndarray | Sequence[Sequence[float]], what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (3, 3) or not np.all(np.isfinite(array)):
        raise InputError(f"{what}: expected a finite 3×3 matrix, got {array.tolist()}")
    return array


def _invert(matrix: np.ndarray, what: str) -> np.ndarray:
    if abs(np.linalg.det(matrix)) < 1e-12 * max(1.0, float(np.abs(matrix).max()) ** 3):
        raise InputError(f"{what} is singular (determinant {np.linalg.det(matrix):.3g}): {np.round(matrix, 6).tolist()}")
    return np.linalg.inv(matrix)


def _normalised_forward(matrix: np.ndarray) -> np.ndarray:
    """A ForwardMatrix scaled row by row so that camera (1, 1, 1) maps to D50 (Y = 1), as the DNG SDK normalises it."""
    rows = matrix.sum(axis=1)
    if np.any(rows == 0):
        raise InputError(f"ForwardMatrix {np.round(matrix, 6).tolist()} maps (1, 1, 1) to a zero XYZ component")
    normalised: np.ndarray = (xy_to_xyz(D50_XY) / rows)[:, None] * matrix
    return normalised


@dataclass(frozen=True)
class ColorCalibration:
    """A DNG camera's colour calibration (the tags of chapter 6), ready to interpolate.

    Parameters
    ----------
    color_matrices
        ColorMatrix1 and, for a dual-illuminant profile, ColorMatrix2 (XYZ → camera).
    illuminants
        CalibrationIlluminant1/2 (EXIF LightSource codes; 0 when absent), one per matrix.
    forward_matrices
        ForwardMatrix1/2 (white-balanced camera → XYZ D50), or ``None`` each.
    camera_calibrations
        CameraCalibration1/2 (identity when absent), one per matrix.
    analog_balance
        AnalogBalance (ones when absent).

    Notes
    -----
    :func:`ispkit.io.dng.dng_calibration` builds one from a file's tags. The construction
    checks every matrix (finite 3×3) and decides, as the DNG SDK does, whether the
    profile is dual-illuminant: two colour matrices with known, different temperatures.
    Otherwise only the first set is used and :attr:`temperatures` is ``None``. The
    matrices are stored with the lower temperature first, and each ForwardMatrix is
    normalised so that camera (1, 1, 1) maps to D50.
    """

    color_matrices: tuple[np.ndarray, ...]
    illuminants: tuple[int, ...] = (0,)
    forward_matrices: tuple[np.ndarray | None, ...] = (None,)
    camera_calibrations: tuple[np.ndarray, ...] = ()
    analog_balance: np.ndarray = field(default_factory=lambda: np.ones(3))
    temperatures: tuple[float, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        n = len(self.color_matrices)
        if n not in (1, 2):
            raise InputError(f"a DNG colour calibration has one or two colour matrices, got {n}")
        matrices = tuple(_matrix(m, f"ColorMatrix{i + 1}") for i, m in enumerate(self.color_matrices))
        illuminants = tuple(int(c) for c in self.illuminants) + (0,) * (n - len(self.illuminants))
        forward = tuple(None if m is None else _normalised_forward(_matrix(m, f"ForwardMatrix{i + 1}")) for i, m in enumerate(self.forward_matrices))
        forward = (forward + (None,) * n)[:n]
        calibrations = tuple(_matrix(m, f"CameraCalibration{i + 1}") for i, m in enumerate(self.camera_calibrations))
        calibrations = (calibrations + (np.eye(3),) * n)[:n]
        balance = np.asarray(self.analog_balance, dtype=np.float64)
        if balance.shape != (3,) or not np.all(np.isfinite(balance)) or np.any(balance <= 0):
            raise InputError(f"AnalogBalance: expected 3 finite positive numbers, got {balance.tolist()}")
        temperatures = [t for t in (illuminant_temperature(c) for c in illuminants[:n]) if t is not None]
        dual = n == 2 and len(temperatures) == 2 and temperatures[0] != temperatures[1]
        order = [0, 1] if not dual or temperatures[0] < temperatures[1] else [1, 0]
        keep = order if dual else [0]
        object.__setattr__(self, "color_matrices", tuple(matrices[i] for i in keep))
        object.__setattr__(self, "illuminants", tuple(illuminants[i] for i in keep))
        object.__setattr__(self, "forward_matrices", tuple(forward[i] for i in keep))
        object.__setattr__(self, "camera_calibrations", tuple(calibrations[i] for i in keep))
        object.__setattr__(self, "analog_balance", balance)
        object.__setattr__(self, "temperatures", tuple(temperatures[i] for i in keep) if dual else None)

    def weight(self, xy: Sequence[float] | np.ndarray) -> float:
        """The weight ``g`` of the first (lower-temperature) matrices at white ``xy``: 1 for a single-illuminant profile.

        ``g = (1/T − 1/T₂) / (1/T₁ − 1/T₂)`` with ``T`` the correlated colour temperature
        of ``xy``, clipped to [0, 1] (DNG specification, chapter 6).
        """
        if self.temperatures is None:
            return 1.0
        t1, t2 = self.temperatures
        t = correlated_color_temperature(xy)
        if t <= t1:
            return 1.0
        if t >= t2:
            return 0.0
        return (1.0 / t - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)

    def _mix(self, matrices: tuple[np.ndarray, ...], g: float) -> np.ndarray:
        return matrices[0] if len(matrices) == 1 else g * matrices[0] + (1.0 - g) * matrices[1]

    def xyz_to_camera(self, xy: Sequence[float] | np.ndarray) -> np.ndarray:
        """``AB · CC · CM`` at white ``xy``: each of CC and CM interpolated with :meth:`weight`."""
        g = self.weight(xy)
        matrices = tuple(cc @ cm for cc, cm in zip(self.camera_calibrations, self.color_matrices, strict=True))
        to_camera: np.ndarray = np.diag(self.analog_balance) @ self._mix(matrices, g)
        return to_camera

    def forward_matrix(self, xy: Sequence[float] | np.ndarray) -> np.ndarray | None:
        """ForwardMatrix at white ``xy`` (interpolated when both exist, else the one given), or ``None``."""
        present = [m for m in self.forward_matrices if m is not None]
        if not present:
            return None
        if len(present) < len(self.forward_matrices):
            return present[0]
        return self._mix(tuple(present), self.weight(xy))

    def neutral_to_xy(self, neutral: Sequence[float] | np.ndarray, *, passes: int = 30) -> np.ndarray:
        """The white ``xy`` whose camera response is ``neutral`` (AsShotNeutral), iterating from D50 as the spec says.

        Each pass interpolates the matrices at the current estimate and maps the neutral
        back to XYZ; it stops when the estimate moves less than 1e-7 (|Δx| + |Δy|). After
        ``passes`` passes without converging (an oscillation), the mean of the last two
        estimates is returned, as the DNG SDK does.
        """
        neutral = _positive_vector(neutral, "AsShotNeutral")
        last = D50_XY.copy()
        for i in range(passes):
            following = xyz_to_xy(_invert(self.xyz_to_camera(last), "XYZtoCamera") @ neutral)
            if np.abs(following - last).sum() < 1e-7:
                return following
            if i == passes - 1:
                following = (following + last) / 2.0
            last = following
        return last

    def camera_white(self, xy: Sequence[float] | np.ndarray) -> np.ndarray:
        """The camera's response to white ``xy``, scaled to a largest channel of 1 and each channel clipped to [0.001, 1]."""
        white = self.xyz_to_camera(xy) @ xy_to_xyz(xy)
        largest = float(white.max())
        if largest <= 0:
            raise InputError(f"the camera's response to white {np.round(xy, 5).tolist()} has no positive channel: {white.tolist()}")
        white_rgb: np.ndarray = np.clip(white / largest, 0.001, 1.0)
        return white_rgb

    def camera_to_xyz_d50(self, xy: Sequence[float] | np.ndarray) -> np.ndarray:
        """Camera RGB → XYZ (D50) for white ``xy`` (DNG specification, chapter 6, "Camera to XYZ (D50) Transform").

        With a ForwardMatrix ``FM``: ``FM · diag(1 / ((AB·CC)⁻¹ · w)) · (AB·CC)⁻¹`` with
        ``w`` = :meth:`camera_white`. Without: ``(XYZtoCamera · CA / s)⁻¹`` with ``CA``
        the Bradford adaptation from D50 to ``xy`` and ``s`` the largest channel of the
        camera's response to D50, so D50 (Y = 1) is reached as the first channel
        saturates. Either way :meth:`camera_white` maps to D50 with Y = 1 (within rounding).
        """
        forward = self.forward_matrix(xy)
        if forward is not None:
            g = self.weight(xy)
            individual = np.diag(self.analog_balance) @ self._mix(self.camera_calibrations, g)
            to_reference = _invert(individual, "AnalogBalance · CameraCalibration")
            reference_white = to_reference @ self.camera_white(xy)
            to_xyz: np.ndarray = forward @ np.diag(1.0 / reference_white) @ to_reference
            return to_xyz
        pcs_to_camera = self.xyz_to_camera(xy) @ bradford(D50_XY, xy)
        scale = float((pcs_to_camera @ xy_to_xyz(D50_XY)).max())
        if scale <= 0:
            raise InputError("the colour matrix maps D50 to no positive camera response")
        return _invert(pcs_to_camera / scale, "XYZtoCamera")

    def camera_to_srgb(self, xy: Sequence[float] | np.ndarray) -> np.ndarray:
        """Camera RGB → linear sRGB for white ``xy``: :data:`SRGB_FROM_XYZ` · Bradford(D50 → D65) · :meth:`camera_to_xyz_d50`."""
        to_srgb: np.ndarray = SRGB_FROM_XYZ @ bradford(D50_XY, D65_XY) @ self.camera_to_xyz_d50(xy)
        return to_srgb


def _positive_vector(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise InputError(f"{what}: expected 3 finite positive numbers, got {array.tolist()}")
    return array


@dataclass(frozen=True)
class DngColor:
    """The colour science of one DNG shot: the white and the two stage parameters it gives.

    Parameters
    ----------
    white_xy
        The as-shot white's chromaticity (from AsShotWhiteXY, or from AsShotNeutral by
        :meth:`ColorCalibration.neutral_to_xy`).
    temperature
        Its correlated colour temperature in kelvin (Robertson).
    weight
        The weight of the lower-temperature calibration (1 for one illuminant).
    neutral
        The camera white (:meth:`ColorCalibration.camera_white`): the response to the
        white, largest channel 1.
    white_balance
        Gains for the ``white_balance`` stage: ``neutral[1] / neutral``, green 1.
    camera_to_srgb
        Camera RGB → linear sRGB (:meth:`ColorCalibration.camera_to_srgb`).
    color_matrix
        For the ``color_correction`` stage after ``white_balance``:
        ``camera_to_srgb · diag(1 / white_balance)``, so the two stages together are
        ``camera_to_srgb``. Its rows sum to ``1 / neutral[1]``: a white-balanced white
        of green ``neutral[1]`` becomes sRGB (1, 1, 1).
    """

    white_xy: np.ndarray
    temperature: float
    weight: float
    neutral: np.ndarray
    white_balance: np.ndarray
    camera_to_srgb: np.ndarray
    color_matrix: np.ndarray


def render(
    calibration: ColorCalibration,
    *,
    neutral: Sequence[float] | np.ndarray | None = None,
    white_xy: Sequence[float] | np.ndarray | None = None,
) -> DngColor:
    """The white balance and colour matrix of a DNG shot with white ``neutral`` (AsShotNeutral) or ``white_xy`` (AsShotWhiteXY).

    Exactly one of ``neutral`` and ``white_xy`` must be given. Raises
    :class:`~ispkit.errors.InputError` for a non-positive neutral, a white without a
    chromaticity or Bradford adaptation, or singular matrices.

    Examples
    --------
    A camera whose colour matrix is the XYZ → sRGB matrix itself (so the camera is an
    sRGB sensor), shot under D65: white balance 1, and the colour matrix undoes the
    adaptation to D50 that the profile connection space goes through (identity up to
    rounding).

    >>> camera = ColorCalibration((SRGB_FROM_XYZ,), (21,))
    >>> color = render(camera, neutral=[1.0, 1.0, 1.0])
    >>> color.white_balance.round(6).tolist(), round(color.temperature)
    ([1.0, 1.0, 1.0], 6504)
    >>> bool(np.allclose(color.color_matrix, np.eye(3), atol=1e-3))
    True
    """
    if (neutral is None) == (white_xy is None):
        raise InputError("render: give exactly one of neutral (AsShotNeutral) and white_xy (AsShotWhiteXY)")
    if neutral is not None:
        xy = calibration.neutral_to_xy(neutral)
    else:
        xy = np.asarray(white_xy, dtype=np.float64)
        xyz_to_xy(xy_to_xyz(xy))  # checks it is a chromaticity
    white = calibration.camera_white(xy)
    gains = white[1] / white
    to_srgb = calibration.camera_to_srgb(xy)
    return DngColor(
        white_xy=xy,
        temperature=correlated_color_temperature(xy),
        weight=calibration.weight(xy),
        neutral=white,
        white_balance=gains,
        camera_to_srgb=to_srgb,
        color_matrix=to_srgb @ np.diag(1.0 / gains),
    )
