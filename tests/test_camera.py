"""ispkit.camera: the published cameras, YAML round trip and construction errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ispkit.camera import Camera, use_camera_lookup
from ispkit.cfa import BAYER_PATTERNS
from ispkit.errors import ConfigError, InputError, UnknownStageError
from ispkit.stages.base import FromCamera

CAMERAS = Path(__file__).resolve().parents[1] / "ispkit" / "cameras"


@pytest.fixture(scope="module")
def microscopy() -> Camera:
    return Camera.from_yaml(CAMERAS / "microscopy.yaml")


@pytest.fixture(scope="module")
def drone() -> Camera:
    return Camera.from_yaml(CAMERAS / "drone.yaml")


class TestPublishedValues:
    def test_microscopy(self, microscopy):
        c = microscopy
        assert c.name == "microscopy"
        assert c.pattern == "RGGB"
        assert (c.bit_depth, c.container_bits) == (16, 16)
        assert c.black_level == (9.834368023181512e-06,) * 4
        assert c.white_balance == (-0.6567, 1.9673, 3.5304)
        assert c.color_matrix == (
            (-2.0338, 0.0933, 0.4157),
            (-0.0286, 2.6464, -0.0574),
            (-0.5516, -0.0947, 2.9308),
        )
        assert c.gain is None and c.read_noise is None and c.stored_gain is None
        assert c.white_level == 65535
        assert c.justification == 1
        assert c.optics == {"numerical_aperture": 0.95, "magnification": 40.0, "psf_fwhm_um": 0.45}

    def test_microscopy_black_level_is_less_than_one_count(self, microscopy):
        assert microscopy.black_level[0] * microscopy.white_level == pytest.approx(0.6445, abs=1e-4)

    def test_drone(self, drone):
        c = drone
        assert c.name == "drone"
        assert c.pattern == "RGGB"
        assert (c.bit_depth, c.container_bits) == (12, 16)
        assert c.black_level == (0.0625, 0.0626, 0.0625, 0.0626)
        assert c.white_balance == (2.86653646, 1.0, 1.73079425)
        assert c.color_matrix == (
            (1.50768983, -0.33571374, -0.17197604),
            (-0.23048614, 1.70698738, -0.47650126),
            (-0.03119153, -0.32803956, 1.35923111),
        )
        assert c.gain == 0.528
        assert c.stored_gain == pytest.approx(8.448)
        assert c.read_noise is None
        assert c.white_level == 65535
        assert c.justification == 16
        assert c.optics["f_number"] == 8.0 and c.optics["gsd_m"] == 0.06

    def test_types_are_canonical(self, drone):
        assert isinstance(drone.black_level, tuple) and all(type(v) is float for v in drone.black_level)
        assert isinstance(drone.color_matrix, tuple) and all(isinstance(r, tuple) for r in drone.color_matrix)
        assert isinstance(drone.optics, Mapping)

    def test_pickle_round_trip(self, drone):
        import pickle

        again = pickle.loads(pickle.dumps(drone))
        assert again == drone and again.optics["f_number"] == 8.0

    def test_optics_are_read_only_and_camera_hashable(self, drone):
        with pytest.raises(TypeError):
            drone.optics["f_number"] = 2.0
        assert hash(drone) == hash(Camera.from_yaml(drone.to_yaml()))
        assert len({drone, Camera.from_yaml(drone.to_yaml())}) == 1

    def test_frozen(self, drone):
        with pytest.raises(AttributeError):
            drone.gain = 1.0  # type: ignore[misc]


class TestDerived:
    @pytest.mark.parametrize(("bits", "container", "white", "just"), [(16, 16, 65535, 1), (12, 16, 65535, 16), (10, 12, 4095, 4), (8, 8, 255, 1)])
    def test_white_level_and_justification(self, bits, container, white, just):
        c = Camera(name="c", bit_depth=bits, container_bits=container, gain=2.0)
        assert c.white_level == white
        assert c.justification == just
        assert c.stored_gain == 2.0 * just

    def test_identity(self):
        c = Camera.identity("bggr")
        assert c.name == "identity" and c.pattern == "BGGR"
        assert c.black_level == (0.0, 0.0, 0.0, 0.0)
        assert c.white_balance == (1.0, 1.0, 1.0)
        assert c.color_matrix == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    def test_resolve(self, drone, microscopy):
        assert drone.resolve(FromCamera("white_balance")) == (2.86653646, 1.0, 1.73079425)
        assert microscopy.resolve(FromCamera("black_level")) == (9.834368023181512e-06,) * 4
        assert drone.resolve(FromCamera("color_matrix"))[0] == (1.50768983, -0.33571374, -0.17197604)
        assert drone.resolve(2.2) == 2.2
        assert drone.resolve(None) is None

    def test_resolve_unknown_field(self, drone):
        with pytest.raises(AttributeError):
            drone.resolve(FromCamera("exposure"))

    def test_get_accepts_camera_mapping_and_path(self, drone):
        assert Camera.get(drone) is drone
        assert Camera.get(drone.to_dict()) == drone
        assert Camera.get(str(CAMERAS / "drone.yaml")) == drone
        assert Camera.get(CAMERAS / "drone.yaml") == drone
        with pytest.raises(InputError, match="expected a Camera"):
            Camera.get(3)  # type: ignore[arg-type]

    def test_a_name_is_found_by_the_installed_lookup(self, drone, monkeypatch):
        assert Camera.get("drone") == drone  # ispkit.registry installed its lookup at import
        with pytest.raises(UnknownStageError, match="unknown camera 'dron': did you mean 'drone'"):
            Camera.get("dron")
        monkeypatch.setattr("ispkit.camera._lookup", None)
        use_camera_lookup({"lab": drone}.__getitem__)
        assert Camera.get("lab") is drone and Camera.builtin("lab") is drone
        monkeypatch.setattr("ispkit.camera._lookup", None)
        with pytest.raises(InputError, match="cannot look up camera 'drone': no camera lookup is installed"):
            Camera.get("drone")


class TestRoundTrip:
    @pytest.mark.parametrize("name", ["microscopy", "drone"])
    def test_builtin_yaml(self, name):
        c = Camera.from_yaml(CAMERAS / f"{name}.yaml")
        assert Camera.from_yaml(c.to_yaml()) == c
        assert Camera.from_dict(c.to_dict()) == c

    def test_identity(self):
        c = Camera.identity("GRBG")
        assert Camera.from_yaml(c.to_yaml()) == c

    def test_to_dict_is_plain_data(self, drone):
        d = drone.to_dict()
        assert d["black_level"] == [0.0625, 0.0626, 0.0625, 0.0626]
        assert d["color_matrix"][2] == [-0.03119153, -0.32803956, 1.35923111]
        assert d["gain"] == 0.528 and d["read_noise"] is None
        assert list(d) == [
            "name", "pattern", "bit_depth", "container_bits", "black_level", "white_balance",
            "color_matrix", "gain", "read_noise", "pixel_size", "description", "optics",
        ]  # fmt: skip

    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    positive = st.one_of(st.none(), st.floats(1e-6, 1e6))

    @settings(max_examples=25, deadline=None)
    @given(
        pattern=st.sampled_from(BAYER_PATTERNS),
        bits=st.integers(1, 16),
        extra=st.integers(0, 16),
        black=st.lists(st.floats(-0.999, 0.999), min_size=4, max_size=4),  # below the white level 1
        wb=st.lists(finite, min_size=3, max_size=3),
        matrix=st.lists(st.lists(finite, min_size=3, max_size=3), min_size=3, max_size=3),
        gain=positive,
        noise=positive,
        description=st.text(max_size=20),
    )
    def test_random_cameras(self, pattern, bits, extra, black, wb, matrix, gain, noise, description):
        c = Camera(
            name="random", pattern=pattern, bit_depth=bits, container_bits=bits + extra, black_level=black,
            white_balance=wb, color_matrix=matrix, gain=gain, read_noise=noise, description=description,
            optics={"f_number": 2.8},
        )  # fmt: skip
        assert Camera.from_yaml(c.to_yaml()) == c


class TestFromDictErrors:
    def test_unknown_field_with_line(self):
        text = "name: cam\npattern: RGGB\nwhite_balanse: [1, 1, 1]\n"
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml(text)
        err = info.value
        assert err.line == 3
        assert str(err).startswith("<string>:3:")
        assert "unknown camera field 'white_balanse'" in err.message
        assert "did you mean 'white_balance'" in err.message

    def test_unknown_field_in_file(self, tmp_path):
        path = tmp_path / "cam.yaml"
        path.write_text("name: cam\n\ngainn: 2.0\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"^{path}:3:\d+: gainn: unknown camera field 'gainn'"):
            Camera.from_yaml(path)

    def test_unknown_field_from_dict(self):
        with pytest.raises(ConfigError, match=r"^<dict>: colour_matrix: unknown camera field 'colour_matrix': did you mean 'color_matrix'"):
            Camera.from_dict({"name": "cam", "colour_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]})

    def test_missing_name(self):
        with pytest.raises(ConfigError, match="a camera needs a 'name'"):
            Camera.from_dict({"pattern": "RGGB"})
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml("pattern: RGGB\nbit_depth: 12\n")
        assert info.value.line == 1

    def test_not_a_mapping(self):
        with pytest.raises(ConfigError, match="a camera must be a mapping, got list"):
            Camera.from_yaml("- name: x\n")

    def test_bad_pattern(self):
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml("name: cam\npattern: RGBG\n")
        assert "unknown CFA pattern 'RGBG'" in str(info.value)
        assert "did you mean 'RGGB'" in str(info.value)
        assert info.value.source == "<string>"

    @pytest.mark.parametrize("black", [[0.1, 0.1, 0.1], [0.1] * 5, [[0.1, 0.1], [0.1, 0.1]], 0.1, [0.1, 0.1, float("nan"), 0.1]])
    def test_black_level_wrong_length_or_value(self, black):
        with pytest.raises(ConfigError, match=r"black_level: expected 4 finite numbers"):
            Camera.from_dict({"name": "cam", "black_level": black})

    @pytest.mark.parametrize("black", [[0.1, 0.1, 1.0, 0.1], [1.5] * 4, [0.1, -1.0, 0.1, 0.1]])
    def test_black_level_at_or_above_white(self, black):
        with pytest.raises(ConfigError, match=r":2:\d+: black_level: need -1 < black level < 1 \(the white level is 1"):
            Camera.from_yaml(f"name: cam\nblack_level: {black}\n")

    def test_white_balance_wrong_length(self):
        with pytest.raises(ConfigError, match=r"white_balance: expected 3 finite numbers"):
            Camera.from_dict({"name": "cam", "white_balance": [1.0, 1.0]})

    def test_color_matrix_wrong_shape(self):
        with pytest.raises(ConfigError, match="color_matrix: expected 3×3 finite numbers"):
            Camera.from_dict({"name": "cam", "color_matrix": [[1, 0, 0], [0, 1, 0]]})

    @pytest.mark.parametrize("field", ["gain", "read_noise"])
    @pytest.mark.parametrize("value", [-0.5, 0.0, float("inf"), float("nan")])
    def test_non_positive_gain_and_noise(self, field, value):
        with pytest.raises(ConfigError, match=f"{field}: expected a positive number or null"):
            Camera.from_dict({"name": "cam", field: value})

    def test_negative_gain_from_yaml_has_position(self):
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml("name: cam\ngain: -0.528\n")
        assert info.value.source == "<string>" and info.value.line is not None
        assert "gain: expected a positive number or null, got -0.528" in info.value.message

    @pytest.mark.parametrize(("bits", "container"), [(0, 16), (17, 16), (16, 33)])
    def test_bit_depths(self, bits, container):
        with pytest.raises(ConfigError, match="need 1 <= bit_depth <= container_bits <= 32"):
            Camera.from_dict({"name": "cam", "bit_depth": bits, "container_bits": container})

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("black_level", ["a", "b", "c", "d"]),
            ("white_balance", "abc"),
            ("color_matrix", [["x", 0, 0], [0, 1, 0], [0, 0, 1]]),
        ],
    )
    def test_non_numeric_values_raise_config_error(self, field, value):
        """Non-numeric YAML values must be reported as a ConfigError with a position, like other bad values."""
        with pytest.raises(ConfigError, match=field):
            Camera.from_dict({"name": "cam", field: value})

    def test_non_numeric_black_level_from_yaml_has_position(self):
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml("name: cam\nblack_level: [a, b, c, d]\n")
        assert info.value.source == "<string>"
        assert info.value.line is not None

    def test_constructor_raises_input_error(self):
        with pytest.raises(InputError, match="camera 'cam' black_level"):
            Camera(name="cam", black_level=(0.1, 0.2))  # type: ignore[arg-type]


class TestValuesCheckedAtTheirLine:
    """Every camera field is checked for type, shape, finiteness and range; YAML errors point at the field's line."""

    @pytest.mark.parametrize(
        ("field", "value", "problem"),
        [
            ("gain", ".inf", "expected a positive number or null, got inf"),
            ("gain", ".nan", "expected a positive number or null, got nan"),
            ("gain", "fast", "expected a positive number or null, got 'fast'"),
            ("gain", "yes", "expected a positive number or null, got True"),
            ("read_noise", "-.inf", "expected a positive number or null, got -inf"),
            ("bit_depth", "12.5", "expected an integer, got 12.5"),
            ("bit_depth", "'12'", "expected an integer, got '12'"),
            ("container_bits", "true", "expected an integer, got True"),
            ("bit_depth", "40", "need 1 <= bit_depth <= container_bits <= 32, got bit_depth=40, container_bits=16"),
            ("black_level", "[0, 0, 0, .inf]", "expected 4 finite numbers, got [0, 0, 0, inf]"),
            ("white_balance", "['1', 1, 1]", "expected 3 finite numbers, got ['1', 1, 1]"),
            ("color_matrix", "[[1, 0, 0], [0, no, 0], [0, 0, 1]]", "expected 3×3 finite numbers"),
            ("pattern", "3", "unknown CFA pattern 3"),
            ("description", "3", "expected text, got 3"),
            ("optics", "{na: .nan}", "expected a finite number for 'na', got nan"),
            ("optics", "{na: fast}", "expected a finite number for 'na', got 'fast'"),
            ("optics", "[0.95]", "expected a mapping of names to numbers, got [0.95]"),
            ("optics", "{1: 0.95}", "expected names (strings) as keys, got 1"),
        ],
    )
    def test_field_errors_from_yaml(self, tmp_path, field, value, problem):
        path = tmp_path / "cam.yaml"
        path.write_text(f"name: cam\n# the field is on line 3\n{field}: {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            Camera.from_yaml(path)
        assert (info.value.source, info.value.line) == (str(path), 3)
        assert info.value.message.startswith(f"{field}: {problem}")

    @pytest.mark.parametrize("name", ["3", "''", "[cam]", "null"])
    def test_name_must_be_text(self, name):
        with pytest.raises(ConfigError, match=r"^<string>:1:7: name: expected a camera name \(a non-empty string\)"):
            Camera.from_yaml(f"name: {name}\n")

    def test_constructor_raises_input_error_naming_camera_and_field(self):
        with pytest.raises(InputError, match=r"^camera 'cam' gain: expected a positive number or null, got inf$"):
            Camera(name="cam", gain=float("inf"))
        with pytest.raises(InputError, match=r"^camera 'cam' bit_depth: expected an integer, got 12.0$"):
            Camera(name="cam", bit_depth=12.0)  # type: ignore[arg-type]

    def test_values_are_canonical(self):
        import numpy as np

        c = Camera(name="cam", bit_depth=np.int64(12), gain=2, optics={"na": 1})
        assert type(c.bit_depth) is int and c.bit_depth == 12 and c.gain == 2.0 and c.optics == {"na": 1}
        assert Camera.from_yaml(c.to_yaml()) == c

    def test_pixel_size_is_optional_positive_micrometres(self):
        assert Camera(name="cam").pixel_size is None
        c = Camera(name="cam", pixel_size=0.5)
        assert c.pixel_size == 0.5 and Camera.from_yaml(c.to_yaml()) == c
        # microscopy: 6.5 µm sensor pitch (PCO edge 5.5) over the 40x objective (ispkit/cameras/microscopy.yaml)
        assert Camera.get("microscopy").pixel_size == pytest.approx(6.5 / 40)
        for bad in (0, -0.1, float("nan"), "0.16"):
            with pytest.raises(InputError, match=r"^camera 'cam' pixel_size: expected a positive number or null"):
                Camera(name="cam", pixel_size=bad)


class TestShadingFields:
    """Lens shading and vignetting: checked like every field, neutral by default, left out of YAML while neutral."""

    def test_neutral_defaults_stay_out_of_the_yaml(self):
        c = Camera(name="plain")
        assert np.asarray(c.shading_map).shape == (4, 33, 33) and np.all(np.asarray(c.shading_map) == 1.0)
        assert c.shading_origin == (0.0, 0.0) and c.shading_spacing == (1 / 32, 1 / 32) and c.vignette == (0.0,) * 5 and c.vignette_center == (0.5, 0.5)
        assert not {"shading_map", "shading_origin", "shading_spacing", "vignette", "vignette_center"} & set(c.to_dict())

    def test_a_shaded_camera_round_trips(self):
        grid = np.random.default_rng(2).uniform(0.5, 3.0, (4, 33, 33))
        c = Camera(
            name="phone",
            shading_map=grid,
            shading_origin=(0.0, 0.01),
            shading_spacing=(1 / 22, 1 / 22),
            vignette=(0.2, 0.0, 0.0, 0.0, 0.1),
            vignette_center=(0.45, 0.5),
        )
        d = c.to_dict()
        assert np.asarray(d["shading_map"]).shape == (4, 33, 33) and d["vignette_center"] == [0.45, 0.5] and "shading_spacing" in d
        assert Camera.from_yaml(c.to_yaml()) == c and hash(Camera.from_dict(d)) == hash(c)
        np.testing.assert_array_equal(np.asarray(c.shading_map), grid)

    @pytest.mark.parametrize(
        ("field", "value", "problem"),
        [
            ("shading_map", np.ones((4, 17, 17)), "shading_map: expected 4×33×33 numbers, got shape (4, 17, 17)"),
            ("shading_map", np.zeros((4, 33, 33)), "shading_map: expected positive gains, got 4356 value(s) <= 0"),
            ("shading_map", np.full((4, 33, 33), np.nan), "shading_map: expected 4×33×33 finite numbers, got 4356 that are not"),
            ("shading_map", "flat", "shading_map: expected 4×33×33 numbers, got str"),
            ("shading_spacing", (0.0, 0.1), "shading_spacing: need a positive spacing, got [0.0, 0.1]"),
            ("shading_origin", (0.0,), "shading_origin: expected 2 finite numbers"),
            ("vignette", (1.0, 2.0), "vignette: expected 5 finite numbers"),
            ("vignette_center", (0.5, 1.5), "vignette_center: need relative coordinates in [0, 1], got [0.5, 1.5]"),
        ],
    )
    def test_checked(self, field, value, problem):
        with pytest.raises(ConfigError, match=re.escape(problem)):
            Camera.from_dict({"name": "cam", field: value})

    def test_from_dng_reads_the_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            Camera.from_dng(tmp_path / "missing.dng")
