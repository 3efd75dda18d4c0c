"""DDFAPD demosaicing of Menon, Andriani and Calvagno (2007).

Directional filtering with an a-posteriori decision: green is interpolated along the
rows and along the columns, a local classifier keeps the direction with the smaller
colour-difference gradients, red and blue follow along the chosen direction, and an
optional refining step smooths the colour differences.

The NumPy backend is ``colour_demosaicing.demosaicing_CFA_Bayer_Menon2007`` (the library)
written out operation for operation, equal to it bit for bit without importing colour
(see :func:`_menon2007_planes`); the torch backend reproduces it.
Everything up to the directional decision is summed tap by tap in the order in which
``scipy.ndimage`` sums it, and always in float64 whatever the input dtype, so the
decision is bit-identical to the library's run on the same values, ties included:
``M = [d_V >= d_H]``, a tie going horizontal as in the library. The refining step takes
no decision of its own; it filters along the same ``M``. Float32 arithmetic could not
promise this: photographs and integer-valued raws give many sums that tie in exact
arithmetic, float32 rounding then picks either direction, and a flipped decision moves
the output by up to about 0.2. The green estimates are formed in float64 too (the
decision selects between them) and rounded once to the input dtype; everything after
the decision runs in the input dtype. The red and blue interpolations filter colour
differences once instead of filtering each colour and subtracting (the same linear
maps, equal to the library to float rounding, about 1e-16, and half the memory
traffic). The decision is piecewise constant, so the output is piecewise linear in the
mosaic: differentiable almost everywhere, with jumps where ``d_V - d_H`` changes sign
(at green sites both sums are 0 and the decision is not used).

"The same values" matters at exact ties: the library's choice there hangs on the last
bits of its float64 input (rounding a 4×4 ramp, or an 8-bit photograph ``k / 255``, to
float32 moves the library's own output by up to 0.17), so a float32 tensor reproduces
the library run on that tensor's values promoted to float64, not on the float64 data
it was rounded from. For the same reason the stage sets ``exact_input``: a pipeline
runs its raw stages (the black level) in float64 and hands this stage their float64
result, which is what the NumPy backend decides on, with ``dtype=`` its own dtype, in
which everything after the decision runs.

References
----------
D. Menon, S. Andriani and G. Calvagno, "Demosaicing With Directional Filtering and a
posteriori Decision", IEEE Transactions on Image Processing 16(1), 132–141, 2007.
doi:10.1109/TIP.2006.884928
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ..._torch import no_grad
from ...arrays import check_mosaic
from ...cfa import check_pattern, masks_numpy, row_mask, select, site_selectors
from ...filters import pad2d
from ..base import Param, Stage

if TYPE_CHECKING:
    import torch

    Selector = tuple[torch.Tensor, torch.Tensor]  # a 0/1 mask and its complement, for ispkit.cfa.select
else:
    from ..._torch import torch

__all__ = ["demosaic_menon2007_numpy", "demosaic_menon2007", "Menon2007"]

#: Directional green filters: ``h_0`` averages the two green neighbours, ``h_1`` is
#: the high-pass correction from the same-colour samples two pixels away.
H_0 = (0.0, 0.5, 0.0, 0.5, 0.0)
H_1 = (-0.25, 0.0, 0.5, 0.0, -0.25)
#: Average of the two same-colour neighbours one pixel away (red/blue interpolation).
K_B = (0.5, 0.0, 0.5)
#: Three-tap mean of the refining step.
FIR = (1 / 3, 1 / 3, 1 / 3)
#: Classifier window for ``d_H`` (its transpose gives ``d_V``): sums the horizontal
#: colour-difference gradients ``D_H`` around a pixel, the centre row weighted 3.
CLASSIFIER = np.array(
    [
        [0.0, 0.0, 1.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 3.0, 0.0, 3.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 1.0],
    ]
)


def demosaic_menon2007_numpy(raw: np.ndarray, refining_step: bool, *, pattern: str) -> np.ndarray:
    """Demosaic one mosaic with DDFAPD (Menon et al. 2007), channel-first.

    Parameters
    ----------
    raw
        Bayer mosaic ``(H, W)`` with even H and W, float64.
    refining_step
        Whether to apply the paper's refining step (step 5 below).
    pattern
        CFA layout: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.

    Returns
    -------
    numpy.ndarray
        RGB view ``(3, H, W)``, not clipped.

    Notes
    -----
    With ``x`` the mosaic and ``∗`` convolution (mirror borders):

    1. Directional greens at red and blue sites (green sites keep ``x``):
       ``Ĝ_H = x ∗ h_0 + x ∗ h_1`` along rows and ``Ĝ_V`` alike along columns, with
       ``h_0 = [0, ½, 0, ½, 0]`` and ``h_1 = [-¼, 0, ½, 0, -¼]``.
    2. Colour differences ``C_H = x - Ĝ_H`` at red and blue sites (0 at green sites),
       their gradients ``D_H(i, j) = |C_H(i, j) - C_H(i, j + 2)|``, and the
       classifier sums ``d_H = D_H ∗ k``, ``d_V = D_V ∗ kᵀ`` with zero borders
       (``k`` is :data:`CLASSIFIER`).
    3. Decision ``M = [d_V ≥ d_H]``: ``G = Ĝ_H`` where ``M``, else ``Ĝ_V``.
    4. Red and blue at green sites: ``G + k_b ∗ (X - G)`` along the direction of the
       neighbours of colour ``X``; red at blue sites (blue at red sites):
       ``B + k_b ∗ (R - B)`` along the direction chosen by ``M``; ``k_b = [½, 0, ½]``.
    5. Refining step: green at red/blue sites is re-estimated from the 3-tap mean of
       ``R - G`` (``B - G``) along ``M``; red and blue at green sites from ``k_b``
       applied to the refreshed differences; red at blue (blue at red) sites from the
       3-tap mean of ``R - B`` along ``M``.

    Examples
    --------
    >>> raw = np.array([[0.2, 0.5, 0.2, 0.5], [0.5, 0.8, 0.5, 0.8]])
    >>> demosaic_menon2007_numpy(raw, True, pattern="RGGB")[:, 0].tolist()
    [[0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5], [0.8, 0.8, 0.8, 0.8]]
    """
    check_mosaic(raw, "demosaic_menon2007_numpy", batched=False)
    cfa = np.asarray(raw, dtype=np.float64)
    masks = masks_numpy(cfa.shape, check_pattern(pattern))
    r, g, b, decided = _menon2007_planes(cfa, masks)
    if refining_step:
        r, g, b = _menon2007_refine(r, g, b, masks, decided)
    return np.stack([r, g, b])


def _cnv(x: np.ndarray, weights: np.ndarray | tuple[float, ...], horizontal: bool) -> np.ndarray:
    """``scipy.ndimage.convolve1d`` along the rows (``horizontal``) or the columns, mirror borders: the library's ``_cnv_h``/``_cnv_v``."""
    out: np.ndarray = ndimage.convolve1d(x, np.asarray(weights, dtype=np.float64), axis=-1 if horizontal else 0, mode="mirror")
    return out


def _rows_and_columns(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and the columns holding a site of ``mask``, as booleans broadcast to its shape."""
    return np.broadcast_to(mask.any(axis=1, keepdims=True), mask.shape), np.broadcast_to(mask.any(axis=0, keepdims=True), mask.shape)


def _menon2007_planes(cfa: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1–4 of DDFAPD on a float64 mosaic: the R, G and B planes and the decision ``M`` (true: horizontal).

    ``colour_demosaicing.demosaicing_CFA_Bayer_Menon2007`` (colour-demosaicing 0.2.7,
    BSD-3-Clause, Colour Developers) operation for operation, so the result is the
    library's bit for bit (the tests compare them); written out here because importing
    colour-demosaicing imports all of colour, and with it matplotlib and pandas (about a
    second).
    """
    r_m, g_m, b_m = masks
    r, g, b = cfa * r_m, cfa * g_m, cfa * b_m
    g_h = np.where(g_m, g, _cnv(cfa, H_0, True) + _cnv(cfa, H_1, True))
    g_v = np.where(g_m, g, _cnv(cfa, H_0, False) + _cnv(cfa, H_1, False))
    c_h = np.where(b_m, b - g_h, np.where(r_m, r - g_h, 0.0))
    c_v = np.where(b_m, b - g_v, np.where(r_m, r - g_v, 0.0))
    d_h = np.abs(c_h - np.pad(c_h, ((0, 0), (0, 2)), mode="reflect")[:, 2:])
    d_v = np.abs(c_v - np.pad(c_v, ((0, 2), (0, 0)), mode="reflect")[2:, :])
    decided = ndimage.convolve(d_v, CLASSIFIER.T, mode="constant") >= ndimage.convolve(d_h, CLASSIFIER, mode="constant")
    g = np.where(decided, g_h, g_v)
    red_rows, blue_rows = _rows_and_columns(r_m)[0], _rows_and_columns(b_m)[0]
    r = np.where(g_m & red_rows, g + _cnv(r, K_B, True) - _cnv(g, K_B, True), r)
    r = np.where(g_m & blue_rows, g + _cnv(r, K_B, False) - _cnv(g, K_B, False), r)
    b = np.where(g_m & blue_rows, g + _cnv(b, K_B, True) - _cnv(g, K_B, True), b)
    b = np.where(g_m & red_rows, g + _cnv(b, K_B, False) - _cnv(g, K_B, False), b)
    r_at_b = np.where(decided, b + _cnv(r, K_B, True) - _cnv(b, K_B, True), b + _cnv(r, K_B, False) - _cnv(b, K_B, False))
    r = np.where(blue_rows & b_m, r_at_b, r)
    b_at_r = np.where(decided, r + _cnv(b, K_B, True) - _cnv(r, K_B, True), r + _cnv(b, K_B, False) - _cnv(r, K_B, False))
    b = np.where(red_rows & r_m, b_at_r, b)
    return r, g, b, decided


def _along_decision(x: np.ndarray, weights: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """``x`` filtered by ``weights`` along the rows where ``decided``, else along the columns."""
    return np.where(decided, _cnv(x, weights, True), _cnv(x, weights, False))


def _menon2007_refine(r: np.ndarray, g: np.ndarray, b: np.ndarray, masks: np.ndarray, decided: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 5, the refining step: ``colour_demosaicing.refining_step_Menon2007`` operation for operation."""
    r_m, g_m, b_m = masks
    fir = np.ones(3) / 3
    b_g_m = np.where(b_m, _along_decision(b - g, fir, decided), 0.0)
    r_g_m = np.where(r_m, _along_decision(r - g, fir, decided), 0.0)
    g = np.where(r_m, r - r_g_m, g)
    g = np.where(b_m, b - b_g_m, g)
    (red_rows, red_columns), (blue_rows, blue_columns) = _rows_and_columns(r_m), _rows_and_columns(b_m)
    r_g, b_g = r - g, b - g
    r = np.where(g_m & blue_rows, g + _cnv(r_g, K_B, False), r)
    r = np.where(g_m & blue_columns, g + _cnv(r_g, K_B, True), r)
    b = np.where(g_m & red_rows, g + _cnv(b_g, K_B, False), b)
    b = np.where(g_m & red_columns, g + _cnv(b_g, K_B, True), b)
    r_b = r - b
    r = np.where(b_m, b + _along_decision(r_b, fir, decided), r)
    b = np.where(r_m, r - _along_decision(r_b, fir, decided), b)
    return r, g, b


def _convolve1d(x: torch.Tensor, weights: tuple[float, ...], axis: int) -> torch.Tensor:
    """``scipy.ndimage.convolve1d(x, weights, axis, mode="mirror")`` for a symmetric kernel.

    The sum runs as scipy runs it for symmetric kernels, ``x·w_0 + Σ_{d=r..1}
    (x_{-d} + x_{+d})·w_d``, zero taps left out, so float64 results are bit-identical.
    Terms are accumulated in place (no tensor here is saved for backward), which
    halves the memory traffic of this bandwidth-bound filter.
    """
    r = len(weights) // 2
    n = x.shape[axis]
    padded = pad2d(x, (r, r, 0, 0) if axis == -2 else (0, 0, r, r), "mirror")
    out = x * weights[r] if weights[r] else None
    for d in range(r, 0, -1):
        if weights[r - d]:
            term = padded.narrow(axis, r - d, n) + padded.narrow(axis, r + d, n)
            term.mul_(weights[r - d])
            out = term if out is None else out.add_(term)
    assert out is not None, "a kernel with a non-zero tap"
    return out


def _convolve_constant(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """``scipy.ndimage.convolve(x, kernel, mode="constant")``, non-zero taps summed in scipy's order.

    Taps of weight 1 are added without the (exact) multiplication. Only used without
    autograd (the classifier), so the sum accumulates in place.
    """
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    padded = pad2d(x, (kh // 2, kh // 2, kw // 2, kw // 2), "constant")
    out = None
    for (i, j), weight in np.ndenumerate(kernel[::-1, ::-1]):
        if weight:
            tap = padded[..., i : i + h, j : j + w]
            if out is None:
                out = tap * float(weight)  # a new tensor, never a view of ``padded``
            elif weight == 1:
                out.add_(tap)
            else:
                out.add_(tap * float(weight))
    assert out is not None, "a kernel with a non-zero tap"
    return out


def _decision_dtype(device: torch.device) -> torch.dtype:
    """Float64, in which the library takes the decision; float32 on Apple's MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _green_estimates(raw: torch.Tensor, green: Selector) -> tuple[torch.Tensor, torch.Tensor]:
    """The directional greens ``Ĝ_H`` and ``Ĝ_V``: sampled green kept, ``h_0 + h_1`` elsewhere."""
    green_h, green_v = (select(green, raw, _convolve1d(raw, H_0, axis) + _convolve1d(raw, H_1, axis)) for axis in (-1, -2))
    return green_h, green_v


@no_grad
def _classifier(raw: torch.Tensor, green_h: torch.Tensor, green_v: torch.Tensor, green: Selector) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier sums ``(d_H, d_V)``; constant in ``raw`` almost everywhere, so built without a graph."""
    not_green = green[1]  # (raw - Ĝ)·0 is ±0: the same |differences| as the library's 0
    c_h = (raw - green_h).mul_(not_green)
    c_v = (raw - green_v).mul_(not_green)
    d_h = (c_h - pad2d(c_h, (0, 0, 0, 2), "mirror")[..., 2:]).abs()
    d_v = (c_v - pad2d(c_v, (0, 2, 0, 0), "mirror")[..., 2:, :]).abs()
    return _convolve_constant(d_h, CLASSIFIER), _convolve_constant(d_v, CLASSIFIER.T)


def _along(planes: torch.Tensor, weights: tuple[float, ...], horizontal: Selector) -> torch.Tensor:
    """``planes`` filtered by ``weights`` along the rows where ``horizontal``, else along the columns."""
    return select(horizontal, _convolve1d(planes, weights, -1), _convolve1d(planes, weights, -2))


def _decision(horizontal: torch.Tensor, dtype: torch.dtype) -> Selector:
    """The decision ``M`` as 0/1 numbers of ``dtype`` and their complement, for :func:`~ispkit.cfa.select`."""
    m = horizontal.to(dtype)
    return m, 1 - m


def demosaic_menon2007(raw: torch.Tensor, refining_step: bool, *, pattern: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Torch twin of :func:`demosaic_menon2007_numpy` on a batch ``(N, H, W)`` → ``(N, 3, H, W)``.

    The directional decision is taken in float64 (float32 on MPS), so it is the
    library's on the values ``raw`` holds; the rest is computed in, and the result has,
    ``dtype`` (default: ``raw``'s). A pipeline passes its float64 black-level result
    with its own dtype. Differentiable almost everywhere in ``raw`` (see the module
    notes on the decision).

    Examples
    --------
    >>> raw = np.random.default_rng(0).random((4, 6))
    >>> got = demosaic_menon2007(torch.from_numpy(raw)[None], True, pattern="GBRG")[0]
    >>> float(abs(got.numpy() - demosaic_menon2007_numpy(raw, True, pattern="GBRG")).max()) < 1e-15
    True
    """
    check_mosaic(raw, "demosaic_menon2007", batched=True)
    pattern = check_pattern(pattern)
    exact = raw.to(_decision_dtype(raw.device))  # the identity for float64 input
    raw = raw.to(dtype or raw.dtype)
    red_rows = row_mask(raw.shape[-2:], pattern, 0, device=raw.device)
    green_exact = site_selectors(raw.shape[-2:], pattern, dtype=exact.dtype, device=raw.device)[1]
    red, green, blue = site_selectors(raw.shape[-2:], pattern, dtype=raw.dtype, device=raw.device)
    green_h, green_v = _green_estimates(exact, green_exact)
    d_h, d_v = _classifier(exact, green_h, green_v, green_exact)
    decided = d_v >= d_h  # the decision M, as the library takes it
    g = select(_decision(decided, exact.dtype), green_h, green_v).to(raw.dtype)
    horizontal = _decision(decided, raw.dtype)
    # R and B at green sites: G plus the k_b-interpolated colour difference from the
    # two neighbours of that colour, along the row in rows of that colour, across it
    # otherwise. The library filters R, B and G separately and subtracts; filtering
    # the difference is the same linear map (equal to float rounding). Only the
    # decision above must be bit-exact, and it is.
    r, b = _at_green(raw - g, g, green, red_rows, raw, raw)
    # R at blue sites and B at red sites: along the decision, from R - B.
    r_b = _along(r - b, K_B, horizontal)
    r, b = select(blue, raw + r_b, r), select(red, raw - r_b, b)
    if not refining_step:
        return torch.stack([r, g, b], 1)
    # Refining: green at red and blue sites from the 3-tap mean of R - G (B - G) along M.
    mean = _along(torch.stack([r, b], 1) - g[:, None], FIR, (horizontal[0][:, None], horizontal[1][:, None]))
    g = select(red, r - mean[:, 0], select(blue, b - mean[:, 1], g))
    # R and B at green sites again, from the refreshed differences; in red rows the
    # neighbours read are R - G along the row and B - G across it, in blue rows the
    # other way round, so one interleaved plane serves both.
    r, b = _at_green(torch.where(red_rows, r - g, b - g), g, green, red_rows, r, b)
    # R at blue sites and B at red sites from the 3-tap mean of R - B along M.
    mean = _along(r - b, FIR, horizontal)
    r = select(blue, b + mean, r)
    b = select(red, r - mean, b)
    return torch.stack([r, g, b], 1)


def _at_green(
    difference: torch.Tensor,
    g: torch.Tensor,
    green: Selector,
    red_rows: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """R and B at green sites: ``g`` plus ``k_b`` of ``difference`` along the row or across it.

    In red rows R comes from the row and B from the columns; in blue rows the other way
    round. Elsewhere R and B keep ``r`` and ``b`` (the mosaic itself for both, before R and B are interpolated).
    """
    along_row, across = _convolve1d(difference, K_B, -1), _convolve1d(difference, K_B, -2)
    r_green = g + torch.where(red_rows, along_row, across)
    b_green = g + torch.where(red_rows, across, along_row)
    return select(green, r_green, r), select(green, b_green, b)


class Menon2007(Stage):
    """Directional filtering with a-posteriori decision (Menon, Andriani, Calvagno 2007)."""

    kind = "demosaic"
    method = "menon2007"
    takes = "raw"
    gives = "rgb"
    cfa_aware = True
    exact_input = True
    params = (
        Param(
            "refining_step",
            (),
            True,
            "whether to smooth the colour differences after the directional interpolation",
            differentiable=False,
            dtype=bool,
        ),
    )
    numpy = staticmethod(demosaic_menon2007_numpy)
    torch = staticmethod(demosaic_menon2007)
