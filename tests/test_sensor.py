"""ispkit.sensor: photon transfer, exposure scaling, acquisition through the CFA, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, norm

from ispkit.camera import Camera
from ispkit.cfa import BAYER_PATTERNS, site_channels, site_map_numpy
from ispkit.errors import InputError
from ispkit.sensor import acquire, batch_seeds, fit_gain, photon_transfer, scale_exposure

CAMERAS = Path(__file__).resolve().parents[1] / "ispkit" / "cameras"
DRONE_READ_NOISE = 2.0  # e⁻; not published for the drone camera, so passed explicitly
LEVELS = np.linspace(0.02, 0.80, 10)  # fractions of full scale: below saturation
SIZE = 256


@pytest.fixture(scope="module")
def drone() -> Camera:
    return Camera.from_yaml(CAMERAS / "drone.yaml")


@pytest.fixture(scope="module")
def microscopy() -> Camera:
    return Camera.from_yaml(CAMERAS / "microscopy.yaml")


@pytest.fixture(scope="module")
def microscopy_calibrated(microscopy) -> Camera:
    return dataclasses.replace(microscopy, gain=2.2, read_noise=1.5)


def _noise(camera: Camera) -> dict:
    return {} if camera.read_noise is not None else {"read_noise": DRONE_READ_NOISE}


def _black_dn(camera: Camera, shape=(SIZE, SIZE)) -> np.ndarray:
    return site_map_numpy(camera.black_level, shape) * camera.white_level


def _flat_pairs(camera: Camera, levels, seed: int, size: int = SIZE) -> np.ndarray:
    """Pairs of flat fields (K, 2, H, W) acquired at ``levels`` of full scale."""
    scene = np.broadcast_to(np.repeat(levels, 2)[:, None, None, None], (2 * len(levels), 3, size, size))
    raw = acquire(scene, camera, seed=seed, **_noise(camera))
    return raw.reshape(len(levels), 2, size, size)


@pytest.fixture(params=["drone", "microscopy_calibrated"])
def camera(request) -> Camera:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def drone_flat(drone) -> np.ndarray:
    """One pair of drone flat fields at 80 % of full scale (2, H, W)."""
    return _flat_pairs(drone, [0.8], seed=11)[0]


# -- photon transfer -------------------------------------------------------------------------


class TestPhotonTransfer:
    def test_fitted_gain_is_the_stored_gain(self, camera):
        means, variances = photon_transfer(_flat_pairs(camera, LEVELS, seed=1), camera)
        assert means.shape == variances.shape == (len(LEVELS),)
        assert np.all(np.diff(means) > 0)
        slope = fit_gain(means, variances)
        assert slope == pytest.approx(camera.stored_gain, rel=0.02)

    def test_drone_gain_is_8448_on_the_stored_numbers(self, drone):
        slope = fit_gain(*photon_transfer(_flat_pairs(drone, LEVELS, seed=2), drone))
        assert drone.stored_gain == pytest.approx(8.448)
        assert slope == pytest.approx(8.448, rel=0.02)
        assert slope / drone.justification == pytest.approx(0.528, rel=0.02)

    def test_means_are_the_signal_above_black(self, camera):
        means, _ = photon_transfer(_flat_pairs(camera, [0.1, 0.5], seed=3), camera)
        top = (2**camera.bit_depth - 1) * camera.justification
        full_scale = top - np.mean(camera.black_level) * camera.white_level
        np.testing.assert_allclose(means, [0.1 * full_scale, 0.5 * full_scale], rtol=0.005)

    def test_differencing_removes_fixed_pattern(self, drone):
        pair = _flat_pairs(drone, [0.3], seed=4)[0]
        _, clean = photon_transfer(pair, drone)
        pattern = np.random.default_rng(0).integers(-20, 21, size=pair.shape[-2:]) * 16 / drone.white_level
        _, patterned = photon_transfer(pair + pattern, drone)  # same pattern in both frames
        assert patterned[0] == pytest.approx(clean[0], rel=1e-9)

    def test_one_pair_and_input_unchanged(self, drone):
        pair = _flat_pairs(drone, [0.3], seed=5)[0]
        before = pair.copy()
        pair.setflags(write=False)
        means, variances = photon_transfer(pair, drone)
        assert means.shape == variances.shape == (1,)
        np.testing.assert_array_equal(pair, before)

    def test_saturation_warns(self, drone):
        pair = _flat_pairs(drone, [1.2], seed=6, size=16)
        with pytest.warns(UserWarning, match="saturated"):
            photon_transfer(pair, drone)

    def test_fit_gain_exact_line(self):
        means = np.array([100.0, 400.0, 900.0, 1600.0])
        assert fit_gain(means, 8.448 * means + 300.0) == pytest.approx(8.448, rel=1e-12)
        assert fit_gain(list(means), list(2.2 * means)) == pytest.approx(2.2, rel=1e-12)


# -- scale_exposure ---------------------------------------------------------------------------


class TestScaleExposure:
    @pytest.mark.parametrize("factor", [0.5, 0.1, 0.01])
    def test_mean_scales_by_factor(self, camera, factor):
        flat = _flat_pairs(camera, [0.5], seed=21)[0, 0]
        black = _black_dn(camera)
        out = scale_exposure(flat, factor, camera, seed=22, **_noise(camera))
        before = np.mean(flat * camera.white_level - black)
        after = np.mean(out * camera.white_level - black)
        assert after == pytest.approx(factor * before, rel=0.01)

    def test_variance_follows_photon_transfer_line(self, camera):
        pair = _flat_pairs(camera, [0.8], seed=23)[0]
        factors = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01)
        scaled = np.stack([scale_exposure(pair, f, camera, seed=24, **_noise(camera)) for f in factors])
        means, variances = photon_transfer(scaled, camera)
        np.testing.assert_allclose(means / means[0], factors, rtol=0.01)
        assert fit_gain(means, variances) == pytest.approx(camera.stored_gain, rel=0.02)

    def test_range_dtype_and_left_justification(self, drone, drone_flat):
        for factor in (1.0, 0.3, 0.001):
            out = scale_exposure(drone_flat.astype(np.float32), factor, drone, seed=1, read_noise=DRONE_READ_NOISE)
            assert out.dtype == np.float64
            assert out.shape == drone_flat.shape
            assert out.min() >= 0.0 and out.max() <= 1.0
            stored = np.round(out * drone.white_level)
            np.testing.assert_allclose(stored, out * drone.white_level, atol=1e-6)
            assert np.all(stored % drone.justification == 0)
            assert stored.max() <= 4095 * 16

    def test_factor_one_without_read_noise_is_identity(self, camera):
        raw = _flat_pairs(camera, [0.4], seed=25, size=64)[0]
        out = scale_exposure(raw, 1.0, camera, seed=26, read_noise=0.0)
        np.testing.assert_array_equal(out, raw)

    def test_factor_one_quantises_off_grid_input(self, drone):
        raw = np.random.default_rng(3).uniform(0.0, 1.0, (32, 32))
        out = scale_exposure(raw, 1.0, drone, seed=0, read_noise=0.0)
        j = drone.justification
        expected = np.clip(np.round(raw * drone.white_level / j) * j, 0, 4095 * j) / drone.white_level
        np.testing.assert_array_equal(out, expected)

    def test_low_scale_is_noisier_relative_to_signal(self, drone, drone_flat):
        black = _black_dn(drone)
        snr = []
        for factor in (1.0, 0.1, 0.01):
            signal = scale_exposure(drone_flat[0], factor, drone, seed=2, read_noise=DRONE_READ_NOISE) * drone.white_level - black
            snr.append(signal.mean() / signal.std())
        assert snr[0] > snr[1] > snr[2]

    def test_seeded_determinism(self, drone, drone_flat):
        kw = dict(read_noise=DRONE_READ_NOISE)
        a = scale_exposure(drone_flat[0], 0.1, drone, seed=5, **kw)
        b = scale_exposure(drone_flat[0], 0.1, drone, seed=5, **kw)
        c = scale_exposure(drone_flat[0], 0.1, drone, seed=6, **kw)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)

    def test_batch_seeding(self, drone, drone_flat):
        """Image i of a batch is the single image with seed batch_seeds(seed, N)[i],
        independent of the batch size; the images of a batch get different noise."""
        kw = dict(read_noise=DRONE_READ_NOISE)
        batch = np.stack([drone_flat[0], drone_flat[0], drone_flat[1]])
        out = scale_exposure(batch, 0.1, drone, seed=7, **kw)
        assert out.shape == batch.shape
        for i, child in enumerate(batch_seeds(7, 3)):
            np.testing.assert_array_equal(out[i], scale_exposure(batch[i], 0.1, drone, seed=child, **kw))
        assert not np.array_equal(out[0], out[1])  # same input, independent noise
        np.testing.assert_array_equal(scale_exposure(batch[:2], 0.1, drone, seed=7, **kw), out[:2])

    def test_seed_sequence_is_not_consumed_and_generator_accepted(self, drone, drone_flat):
        kw = dict(read_noise=DRONE_READ_NOISE)
        ss = np.random.SeedSequence(42)
        a = scale_exposure(drone_flat, 0.1, drone, seed=ss, **kw)
        b = scale_exposure(drone_flat, 0.1, drone, seed=ss, **kw)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, scale_exposure(drone_flat, 0.1, drone, seed=42, **kw))
        g1 = scale_exposure(drone_flat[0], 0.1, drone, seed=np.random.default_rng(3), **kw)
        np.testing.assert_array_equal(g1, scale_exposure(drone_flat[0], 0.1, drone, seed=3, **kw))

    def test_input_unchanged(self, drone, drone_flat):
        raw = drone_flat.copy()
        scale_exposure(raw, 0.05, drone, seed=1, read_noise=DRONE_READ_NOISE)
        np.testing.assert_array_equal(raw, drone_flat)
        raw.setflags(write=False)
        scale_exposure(raw, 0.05, drone, seed=1, read_noise=DRONE_READ_NOISE)  # read-only input works

    def test_overrides(self, drone, drone_flat):
        black = _black_dn(drone)
        # A higher read noise override gives a noisier dark-ish image.
        quiet = scale_exposure(drone_flat[0], 0.01, drone, seed=1, read_noise=0.5)
        loud = scale_exposure(drone_flat[0], 0.01, drone, seed=1, read_noise=20.0)
        assert np.std(loud * drone.white_level - black) > 2 * np.std(quiet * drone.white_level - black)

    @settings(max_examples=25, deadline=None)
    @given(
        h=st.integers(1, 6).map(lambda k: 2 * k),
        w=st.integers(1, 6).map(lambda k: 2 * k),
        factor=st.floats(1e-4, 1.0),
        seed=st.integers(0, 2**32),
    )
    def test_property_range_and_grid(self, h, w, factor, seed):
        camera = Camera.from_yaml(CAMERAS / "drone.yaml")
        raw = np.random.default_rng(seed).uniform(0, 1, (h, w))
        out = scale_exposure(raw, factor, camera, seed=seed, read_noise=DRONE_READ_NOISE)
        assert out.shape == raw.shape and out.dtype == np.float64
        assert 0.0 <= out.min() and out.max() <= 4095 * 16 / 65535
        assert np.all(np.round(out * 65535) % 16 == 0)


class TestBelowBlackRemainder:
    """scale_exposure carries the part of the signal below black (``S < 0``, where ``n = 0`` and the
    remainder ``r = S``) deterministically, scaled by ``f``: dark frames keep their below-black half."""

    def test_values_below_black_move_towards_black_by_the_factor_exactly(self, drone):
        j, w = drone.justification, drone.white_level
        black = _black_dn(drone, (8, 8))
        stored = np.floor(black / j) * j - j * np.arange(1, 65).reshape(8, 8)  # integers on the ADC grid, 16..1024 DN below
        raw = stored / w
        for f in (0.5, 0.1, 0.001):
            out = scale_exposure(raw, f, drone, seed=0, read_noise=0.0)
            expected = np.clip(np.round((f * (raw * w - black) + black) / j) * j, 0, 4095 * j) / w
            np.testing.assert_array_equal(out, expected)
        half = scale_exposure(raw, 0.5, drone, seed=0, read_noise=0.0) * w - black
        assert np.all(np.abs(half - 0.5 * (stored - black)) <= j / 2 + 1e-9)  # halfway to black, to the ADC grid
        assert np.all(half < 0) and half.min() < -500  # still below black, not clipped to it

    def test_dark_frame_mean_and_variance(self, drone):
        """Dark frame of read noise 2 e⁻ (half of it below black). With ``S = g n + r`` and ``k ~ Bin(n, f)``
        the output ``g (k + ε) + f r`` has mean ``f·S`` and variance ``f² var(S) + g² f (1 - f) ⟨n⟩ + g² σ² + J²/12``."""
        f, sigma = 0.3, DRONE_READ_NOISE
        g, j, w = drone.stored_gain, drone.justification, drone.white_level
        dark = acquire(np.zeros((3, 256, 512)), drone, seed=40, read_noise=sigma)
        black = _black_dn(drone, dark.shape)
        signal = dark * w - black
        assert 0.4 < np.mean(signal < 0) < 0.6
        electrons = np.rint(np.maximum(signal, 0.0) / g)
        out = scale_exposure(dark, f, drone, seed=41, read_noise=sigma) * w - black
        mean = f * signal.mean()
        var = f**2 * signal.var() + g**2 * f * (1 - f) * electrons.mean() + g**2 * sigma**2 + j**2 / 12
        assert out.mean() == pytest.approx(mean, abs=5 * np.sqrt(var / out.size))
        assert out.var() == pytest.approx(var, rel=5 * np.sqrt(2 / out.size))
        below = signal < 0  # these pixels hold no electrons: only the scaled remainder and fresh read noise
        assert out[below].mean() == pytest.approx(f * signal[below].mean(), abs=5 * np.sqrt(var / below.sum()))

    def test_count_clipped_at_zero(self, microscopy_calibrated):
        """A black level of 0.64 DN with read noise 3.3 DN: the output is 0 where ``g (k + ε) + f r + B`` rounds to
        0 or less, i.e. ``P = Σ_k Bin(k; n, f) Φ((0.5 - B - f r - g k) / (g σ))`` per pixel, given the input frame."""
        cam = microscopy_calibrated
        f, g, sigma, w = 0.5, cam.stored_gain, cam.read_noise, cam.white_level
        dark = acquire(np.zeros((3, 256, 512)), cam, seed=42)
        black = _black_dn(cam, dark.shape)
        signal = dark * w - black
        electrons = np.rint(np.maximum(signal, 0.0) / g)
        remainder = signal - electrons * g
        ks = np.arange(int(electrons.max()) + 1)[:, None, None]
        p = (binom.pmf(ks, electrons, f) * norm.cdf((0.5 - black - f * remainder - g * ks) / (g * sigma))).sum(axis=0)
        zeros = scale_exposure(dark, f, cam, seed=43) == 0
        assert 0.2 < p.mean() < 0.8
        assert zeros.mean() == pytest.approx(p.mean(), abs=5 * np.sqrt(np.sum(p * (1 - p))) / p.size)


# -- acquire -----------------------------------------------------------------------------------


class TestAcquire:
    @pytest.mark.parametrize("pattern", BAYER_PATTERNS)
    def test_cfa_sampling(self, drone, pattern):
        """Read noise 0, ~10⁸ electrons at full scale: each site shows its filter's channel."""
        cam = dataclasses.replace(drone, pattern=pattern)
        rng = np.random.default_rng(0)
        scene = rng.uniform(0.1, 0.9, (3, 32, 48))
        raw = acquire(scene, cam, seed=1, gain=1e-4, read_noise=0.0)
        full = (4095 * 16 - _black_dn(cam, (32, 48))) / cam.white_level
        recovered = (raw - _black_dn(cam, (32, 48)) / cam.white_level) / full
        for site, channel in enumerate(site_channels(pattern)):
            i, j = divmod(site, 2)
            np.testing.assert_allclose(recovered[i::2, j::2], scene[channel, i::2, j::2], rtol=0.01)

    def test_site_means_of_a_coloured_flat(self, microscopy_calibrated):
        """10⁸ e⁻ at full scale and 10⁻⁴ DN/e⁻: site means are the channel values."""
        cam = microscopy_calibrated
        scene = np.empty((3, 64, 64))
        scene[:] = np.array([0.2, 0.5, 0.8])[:, None, None]
        raw = acquire(scene, cam, seed=2, gain=1e-4, read_noise=0.0, full_scale_electrons=1e8)
        signal = raw * cam.white_level - _black_dn(cam, (64, 64))
        for site, channel in enumerate(site_channels(cam.pattern)):
            i, j = divmod(site, 2)
            assert signal[i::2, j::2].mean() == pytest.approx(scene[channel, 0, 0] * 1e8 * 1e-4, rel=0.01)

    def test_full_scale_electrons_sets_the_exposure(self, drone):
        raw = acquire(np.full((3, 128, 128), 0.5), drone, seed=3, read_noise=0.0, full_scale_electrons=1000.0)
        signal = raw * drone.white_level - _black_dn(drone, (128, 128))
        assert signal.mean() == pytest.approx(500 * drone.stored_gain, rel=0.01)
        assert signal.var() == pytest.approx(500 * drone.stored_gain**2 + 16**2 / 12, rel=0.03)

    def test_full_scale_mean_is_the_largest_stored_number(self, camera):
        raw = acquire(np.full((3, 64, 64), 0.5), camera, seed=4, **_noise(camera))
        black = _black_dn(camera, (64, 64))
        top = (2**camera.bit_depth - 1) * camera.justification
        np.testing.assert_allclose((raw * camera.white_level - black).mean(), 0.5 * (top - black).mean(), rtol=0.005)

    def test_saturation_clips_at_the_largest_stored_number(self, drone):
        raw = acquire(np.full((3, 32, 32), 1.5), drone, seed=5, read_noise=DRONE_READ_NOISE)
        np.testing.assert_array_equal(raw, np.full((32, 32), 4095 * 16 / 65535))
        assert raw.max() < 1.0

    def test_saturation_clips_at_one_for_16_bit(self, microscopy_calibrated):
        raw = acquire(np.full((3, 16, 16), 2.0), microscopy_calibrated, seed=5)
        np.testing.assert_array_equal(raw, np.ones((16, 16)))

    def test_black_level_in_a_dark_scene(self, drone):
        raw = acquire(np.zeros((3, SIZE, SIZE)), drone, seed=6, read_noise=DRONE_READ_NOISE)
        for site in range(4):
            i, j = divmod(site, 2)
            assert raw[i::2, j::2].mean() == pytest.approx(drone.black_level[site], abs=1.0 / drone.white_level)

    def test_per_site_black_levels(self, microscopy_calibrated):
        cam = dataclasses.replace(microscopy_calibrated, black_level=(0.01, 0.02, 0.03, 0.04))
        raw = acquire(np.zeros((3, 128, 128)), cam, seed=7)
        means = [raw[i::2, j::2].mean() for i in (0, 1) for j in (0, 1)]
        np.testing.assert_allclose(means, cam.black_level, atol=0.5 / cam.white_level)

    def test_dtype_grid_and_float32_scene(self, drone):
        raw = acquire(np.full((3, 16, 16), 0.3, dtype=np.float32), drone, seed=8, read_noise=DRONE_READ_NOISE)
        assert raw.dtype == np.float64 and raw.shape == (16, 16)
        assert np.all(np.round(raw * 65535) % 16 == 0)

    def test_batch_seeding_and_determinism(self, drone):
        scene = np.random.default_rng(1).uniform(0, 1, (3, 3, 16, 16))
        kw = dict(read_noise=DRONE_READ_NOISE)
        out = acquire(scene, drone, seed=9, **kw)
        assert out.shape == (3, 16, 16)
        np.testing.assert_array_equal(out, acquire(scene, drone, seed=9, **kw))
        assert not np.array_equal(out, acquire(scene, drone, seed=10, **kw))
        for i, child in enumerate(batch_seeds(9, 3)):
            np.testing.assert_array_equal(out[i], acquire(scene[i], drone, seed=child, **kw))

    def test_input_unchanged(self, drone):
        scene = np.random.default_rng(2).uniform(0, 1, (3, 16, 16))
        before = scene.copy()
        scene.setflags(write=False)
        acquire(scene, drone, seed=0, read_noise=DRONE_READ_NOISE)
        np.testing.assert_array_equal(scene, before)

    def test_camera_by_name(self, drone):
        scene = np.full((3, 8, 8), 0.4)
        np.testing.assert_array_equal(acquire(scene, "drone", seed=1, read_noise=2.0), acquire(scene, drone, seed=1, read_noise=2.0))


# -- errors --------------------------------------------------------------------------------


class TestErrors:
    def test_scale_exposure_shapes_and_values(self, drone):
        kw = dict(seed=0, read_noise=1.0)
        with pytest.raises(InputError, match="floating-point"):
            scale_exposure(np.zeros((4, 4), dtype=np.uint16), 0.5, drone, **kw)
        with pytest.raises(InputError, match="even"):
            scale_exposure(np.zeros((5, 4)), 0.5, drone, **kw)
        with pytest.raises(InputError, match=r"\(H, W\) or a batch \(N, H, W\)"):
            scale_exposure(np.zeros((1, 2, 4, 4)), 0.5, drone, **kw)
        with pytest.raises(InputError, match="NaN"):
            scale_exposure(np.full((4, 4), np.nan), 0.5, drone, **kw)
        with pytest.raises(InputError, match=r"normalised to \[0, 1\]"):
            scale_exposure(np.full((4, 4), 1.5), 0.5, drone, **kw)
        with pytest.raises(InputError, match="numpy array"):
            scale_exposure([[0.1, 0.2], [0.3, 0.4]], 0.5, drone, **kw)

    @pytest.mark.parametrize("factor", [0, 0.0, -0.1, 1.0001, 2, float("nan"), float("inf"), True, "0.5", None])
    def test_factor_out_of_range(self, drone, factor):
        with pytest.raises(InputError, match=r"0 < factor <= 1"):
            scale_exposure(np.zeros((4, 4)), factor, drone, read_noise=1.0)

    def test_missing_gain_names_camera_and_fix(self, microscopy):
        for fn, arg in ((scale_exposure, (np.zeros((4, 4)), 0.5)), (acquire, (np.zeros((3, 4, 4)),))):
            with pytest.raises(InputError, match=r"'microscopy' has no conversion gain and no read noise.*gain=.*read_noise="):
                fn(*arg, microscopy)
            with pytest.raises(InputError, match=r"'microscopy' has no read noise.*read_noise="):
                fn(*arg, microscopy, gain=2.2)
            fn(*arg, microscopy, gain=2.2, read_noise=1.5)  # overrides are enough

    def test_missing_read_noise_drone(self, drone):
        with pytest.raises(InputError, match=r"'drone' has no read noise.*read_noise=.*dataclasses.replace"):
            scale_exposure(np.zeros((4, 4)), 0.5, drone)

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"gain": 0.0, "read_noise": 1.0}, "gain"),
            ({"gain": -1.0, "read_noise": 1.0}, "gain"),
            ({"read_noise": -1.0}, "read_noise"),
            ({"read_noise": float("nan")}, "read_noise"),
            ({"read_noise": 1.0, "seed": -1}, "seed"),
            ({"read_noise": 1.0, "seed": 1.5}, "seed"),
        ],
    )
    def test_bad_overrides(self, drone, kw, match):
        with pytest.raises(InputError, match=match):
            scale_exposure(np.zeros((4, 4)), 0.5, drone, **kw)
        with pytest.raises(InputError, match=match):
            acquire(np.zeros((3, 4, 4)), drone, **kw)

    def test_acquire_scene(self, drone):
        kw = dict(seed=0, read_noise=1.0)
        for shape in ((4, 4), (4, 4, 4), (2, 3, 3, 4, 4)):
            with pytest.raises(InputError, match=r"\(3, H, W\)"):
                acquire(np.zeros(shape), drone, **kw)
        with pytest.raises(InputError, match="even"):
            acquire(np.zeros((3, 4, 5)), drone, **kw)
        with pytest.raises(InputError, match="floating-point"):
            acquire(np.zeros((3, 4, 4), dtype=np.int32), drone, **kw)
        with pytest.raises(InputError, match="NaN"):
            acquire(np.full((3, 4, 4), np.nan), drone, **kw)
        with pytest.raises(InputError, match=">= 0"):
            acquire(np.full((3, 4, 4), -0.1), drone, **kw)
        with pytest.raises(InputError, match="full_scale_electrons"):
            acquire(np.zeros((3, 4, 4)), drone, full_scale_electrons=0.0, **kw)

    def test_photon_transfer_inputs(self, drone):
        with pytest.raises(InputError, match=r"pairs of flat fields \(K, 2, H, W\)"):
            photon_transfer(np.zeros((3, 4, 4)), drone)
        with pytest.raises(InputError, match="even"):
            photon_transfer(np.zeros((2, 2, 4, 5)), drone)
        with pytest.raises(InputError, match="floating-point"):
            photon_transfer(np.zeros((2, 4, 4), dtype=np.uint16), drone)
        with pytest.raises(InputError, match="NaN"):
            photon_transfer(np.full((2, 4, 4), np.nan), drone)

    def test_fit_gain_inputs(self):
        with pytest.raises(InputError, match="same length"):
            fit_gain([1.0, 2.0], [1.0, 2.0, 3.0])
        with pytest.raises(InputError, match="two different mean levels"):
            fit_gain([1.0], [1.0])
        with pytest.raises(InputError, match="two different mean levels"):
            fit_gain([5.0, 5.0], [1.0, 2.0])
        with pytest.raises(InputError, match="finite"):
            fit_gain([1.0, np.nan], [1.0, 2.0])
        with pytest.raises(InputError, match="sequences of numbers"):
            fit_gain(["a", "b"], [1.0, 2.0])
