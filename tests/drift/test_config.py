"""Experiment YAML: parsing, defaults, and errors that point at the line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ispkit.corruptions import CORRUPTIONS
from ispkit.drift.config import (
    COMMANDS,
    AcquisitionConfig,
    AdjustmentConfig,
    ExperimentConfig,
    ForensicsConfig,
    ModelConfig,
    SynthesisConfig,
    copy_experiment,
    shipped_experiments,
)
from ispkit.errors import ConfigError, InputError
from ispkit.pipeline import Pipeline, presets

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

MINIMAL = """\
dataset: {kind: microscopy, root: data}
pipelines: {train: all, test: all}
model: {name: small_cnn}
"""


def test_defaults_and_relative_root(tmp_path):
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL)
    config = SynthesisConfig.from_yaml(file)
    assert config.name == "exp" and config.seed == 0 and config.device == "auto"
    assert config.dataset.root == (tmp_path / "data").resolve() and config.dataset.intensity == 1.0
    assert config.dataset.task == "classification"
    assert config.train_pipelines == tuple(presets()) == config.test_pipelines
    assert config.folds == 5 and config.training.epochs == 10
    assert config.corruptions.names == tuple(CORRUPTIONS) and config.corruptions.severities == (3,)
    assert config.corruptions.scale is None
    assert config.text == MINIMAL
    assert config.threads is None and config.training.recalibrate_bn is False


@pytest.mark.parametrize("name", ["../../../x", "/etc/cron.d/x", "a/b", "a\\\\b", "..", ".hidden", "x" * 101, "tab\\tname"])
@pytest.mark.parametrize("cls", [SynthesisConfig, ForensicsConfig, AdjustmentConfig])
def test_a_name_is_a_folder_name_inside_runs(cls, name):
    """The default run folder is ``runs/<name>``: a name that would leave it is refused at its line."""
    body = MINIMAL if cls is SynthesisConfig else "dataset: {kind: microscopy, root: data}\npipeline: bi,s,me\nmodel: {name: small_cnn}\n"
    with pytest.raises(ConfigError, match=r"<string>:2:7: name: an experiment name is a folder name .* got "):
        cls.from_yaml(f'# study\nname: "{name}"\n' + body)


def test_a_default_name_from_an_odd_file_name_is_made_a_folder_name(tmp_path):
    file = tmp_path / "..my study (v2)?.yaml"
    file.write_text(MINIMAL)
    assert SynthesisConfig.from_yaml(file).name == "my study _v2__"


COMMON = (
    "name: shared\nseed: 7\ndevice: cpu\nthreads: 3\ndataset: {kind: microscopy, root: data}\nmodel: {name: small_cnn, downsample: 2}\ntraining: {epochs: 4}\n"
)


def test_the_three_experiments_share_one_base():
    configs = [
        SynthesisConfig.from_yaml(COMMON + 'pipelines: {train: ["bi,s,me"]}\n'),
        ForensicsConfig.from_yaml(COMMON + "pipeline: bi,s,ga\n"),
        AdjustmentConfig.from_yaml(COMMON + "pipeline: bi,s,me\n"),
    ]
    common = [f.name for f in dataclasses.fields(ExperimentConfig)]
    assert common == ["name", "dataset", "model", "training", "seed", "device", "text", "threads"]
    assert all(isinstance(c, ExperimentConfig) and all(f.kw_only for f in dataclasses.fields(c) if f.name in common) for c in configs)
    values = [[getattr(c, name) for name in common if name not in ("text", "training")] for c in configs]
    assert values[0] == values[1] == values[2] and values[0][:2] == ["shared", configs[0].dataset]
    assert [(c.seed, c.device, c.threads, c.training.epochs, c.training.seed, c.model.downsample) for c in configs] == [(7, "cpu", 3, 4, 7, 2)] * 3
    assert [c.text.startswith(COMMON) for c in configs] == [True] * 3
    with pytest.raises(TypeError):
        ExperimentConfig("x", configs[0].dataset, None, configs[0].training)  # type: ignore[misc]  # keyword-only


def test_adjustment_recalibrates_batchnorm_by_default_and_threads_are_checked():
    base = "dataset: {kind: microscopy, root: data}\npipeline: bi,s,me\nmodel: {name: small_cnn}\n"
    assert AdjustmentConfig.from_yaml(base).training.recalibrate_bn is True
    assert AdjustmentConfig.from_yaml(base + "training: {recalibrate_bn: false}\n").training.recalibrate_bn is False
    assert AdjustmentConfig.from_yaml(base + "threads: 3\n").threads == 3
    with pytest.raises(ConfigError, match="threads: expected an integer >= 1, got 0"):
        AdjustmentConfig.from_yaml(base + "threads: 0\n")


def test_pipeline_yaml_files_are_labelled_by_stem(tmp_path):
    custom = tmp_path / "my_isp.yaml"
    custom.write_text(Pipeline.preset("ma,s,ga").to_yaml())
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL.replace("{train: all, test: all}", '{train: ["bi,s,me", my_isp.yaml], test: ["bi,s,me", my_isp.yaml]}'))
    config = SynthesisConfig.from_yaml(file)
    assert config.train_pipelines == ("bi,s,me", "my_isp")
    assert config.pipeline("my_isp", "microscopy") == Pipeline.preset("ma,s,ga")
    assert config.pipeline("bi,s,me", "microscopy") == Pipeline.preset("bi,s,me")


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (("model: {name: small_cnn}", "model: {name: small_cn}"), "did you mean 'small_cnn'", 3),
        (("model: {name: small_cnn}", "model: {name: small_unet}"), "segmentation model but dataset kind 'microscopy'", 3),
        (("kind: microscopy", "kind: microscope"), "expected one of", 1),
        (("{train: all, test: all}", '{train: ["bi,s,me"], test: ["me,u,ga"]}'), "missing \\['bi,s,me'\\]", 2),
        (("{train: all, test: all}", "{train: [bi,s,me], test: all}"), "unknown preset 'bi'", 2),
        (("{train: all, test: all}", '{train: ["bi,s,me", "bi,s,me"], test: all}'), "listed twice", 2),
        (("{train: all, test: all}", "{train: all, tests: all}"), "did you mean 'test'", 2),
        (("{kind: microscopy, root: data}", "{kind: microscopy, root: data, intensity: 0.3}"), "was not published", 1),
        (("{kind: microscopy, root: data}", "{kind: microscopy, root: data, synthetic: {frames: 2}}"), "unknown synthetic microscopy setting", 1),
    ],
)
def test_errors_name_the_problem_and_the_line(tmp_path, change, message, line):
    file = tmp_path / "exp.yaml"
    file.write_text(MINIMAL.replace(*change))
    with pytest.raises(ConfigError, match=message) as info:
        SynthesisConfig.from_yaml(file)
    assert info.value.line == line and info.value.source == str(file)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("folds: 1", "integer >= 2"),
        ("training: {epochs: 0}", r"training\.epochs: expected an integer >= 1, got 0"),
        ("training: {epoch: 3}", "did you mean 'epochs'"),
        ("corruptions: {severities: [6]}", r"corruptions\.severities\[0\]: expected an integer in \[1, 5\], got 6"),
        ("corruptions: {names: [fog]}", r"corruptions\.names\[0\]: expected one of \['brightness', .*, got 'fog'$"),
        ("corruptions: {names: fog}", "expected 'all' or a list"),
        ("corruptions: {scale: -1}", "positive number"),
        ("device: tpu", "'auto', 'cpu' or 'cuda"),
        ("optimiser: adam", "unknown experiment key 'optimiser'"),
    ],
)
def test_other_errors(extra, message):
    with pytest.raises(ConfigError, match=message):
        SynthesisConfig.from_yaml(MINIMAL + extra + "\n")


KINDS = {
    "synthesis": SynthesisConfig,
    "rawbench": SynthesisConfig,
    "train": SynthesisConfig,
    "forensics": ForensicsConfig,
    "adjustment": AdjustmentConfig,
    "augmentation": AdjustmentConfig,
    "acquisition": AcquisitionConfig,
}


@pytest.mark.parametrize("name", sorted(p.name for p in EXPERIMENTS.glob("*.yaml")))
def test_shipped_experiments_parse(name):
    config = KINDS[name.split("_")[0]].from_yaml(EXPERIMENTS / name)
    assert config.name == Path(name).stem.replace("_", "-")
    assert config.dataset.root.is_absolute()


# -- the example experiments are package data ----------------------------------------------


def test_the_repository_experiments_are_the_packaged_ones():
    shipped = shipped_experiments()
    assert sorted(shipped) == sorted(p.stem for p in EXPERIMENTS.glob("*.yaml")) and len(shipped) >= 10
    for name, experiment in shipped.items():
        assert (EXPERIMENTS / f"{name}.yaml").read_text(encoding="utf-8") == experiment.text, f"experiments/{name}.yaml differs from ispkit/experiments/"


@pytest.mark.parametrize("name", sorted(shipped_experiments()))
def test_each_packaged_experiment_is_listed_with_the_command_that_runs_it(name):
    experiment = shipped_experiments()[name]
    assert (
        experiment.command
        == {
            "synthesis": "synthesis",
            "rawbench": "rawbench",
            "train": "synthesis",
            "forensics": "forensics",
            "adjustment": "adjust",
            "augmentation": "adjust",
            "acquisition": "acquire",
        }[name.split("_")[0]]
    )
    assert isinstance(COMMANDS[experiment.command].from_yaml(experiment.text), KINDS[name.split("_")[0]])
    assert experiment.summary == " ".join(line[2:] for line in experiment.text.splitlines() if line.startswith("# ")) and len(experiment.summary) > 40


def test_a_copy_in_a_projects_experiments_folder_reads_as_the_repositorys_do(tmp_path):
    root = EXPERIMENTS.parent
    for name, experiment in shipped_experiments().items():
        copy = copy_experiment(name, tmp_path / "experiments")
        assert copy == tmp_path / "experiments" / f"{name}.yaml" and copy.read_text(encoding="utf-8") == experiment.text
        mine, theirs = (COMMANDS[experiment.command].from_yaml(file) for file in (copy, EXPERIMENTS / f"{name}.yaml"))
        assert mine.dataset.root.relative_to(tmp_path) == theirs.dataset.root.relative_to(root)
        if getattr(theirs, "checkpoint", None) is not None:
            assert mine.checkpoint.relative_to(tmp_path) == theirs.checkpoint.relative_to(root)
    assert copy_experiment("synthesis_drone_small.yaml", tmp_path / "elsewhere").name == "synthesis_drone_small.yaml"


def test_copying_never_overwrites_and_unknown_names_are_named(tmp_path):
    (tmp_path / "synthesis_microscopy_small.yaml").write_text("mine")
    with pytest.raises(FileExistsError, match=r"synthesis_microscopy_small\.yaml exists; refusing to overwrite it"):
        copy_experiment("synthesis_microscopy_small", tmp_path)
    assert (tmp_path / "synthesis_microscopy_small.yaml").read_text() == "mine"
    with pytest.raises(InputError, match=r"no shipped experiment 'synthesis_micro': did you mean .*'synthesis_microscopy_small'"):
        copy_experiment("synthesis_micro", tmp_path)


def test_the_wheel_ships_the_experiments(tmp_path):
    """Build a wheel from the package's files alone (no network, no build isolation): the YAMLs are package data."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = EXPERIMENTS.parent
    shutil.copytree(source / "ispkit", tmp_path / "src" / "ispkit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(source / name, tmp_path / "src" / name)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=tmp_path / "src", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = tmp_path / "dist" / done.stdout.strip().splitlines()[-1]
    shipped = sorted(n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("ispkit/experiments/"))
    assert shipped == [f"ispkit/experiments/{name}.yaml" for name in sorted(shipped_experiments())]


# -- values are checked when the file is read ---------------------------------------------


def _located(cls, tmp_path, text):
    """The ConfigError of ``cls.from_yaml`` on ``text`` written to a file."""
    file = tmp_path / "exp.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        cls.from_yaml(file)
    assert info.value.source == str(file)
    return info.value


@pytest.mark.parametrize(
    ("training", "key", "problem"),
    [
        ("lr: .inf", "lr", "expected a learning rate > 0 (finite), got inf"),
        ("lr: fast", "lr", "expected a learning rate > 0 (finite), got 'fast'"),
        ("lr: .nan", "lr", "expected a learning rate > 0 (finite), got nan"),
        ("lr: 0", "lr", "expected a learning rate > 0 (finite), got 0"),
        ("augment: 'no'", "augment", "expected true or false, got 'no'"),
        ("augment: 1", "augment", "expected true or false, got 1"),
        ("recalibrate_bn: 'true'", "recalibrate_bn", "expected true or false, got 'true'"),
        ("weight_decay: -1", "weight_decay", "expected a weight decay >= 0 (finite), got -1"),
        ("epochs: 2.5", "epochs", "expected an integer >= 1, got 2.5"),
        ("batch_size: true", "batch_size", "expected an integer >= 1, got True"),
    ],
)
def test_training_values_are_checked_at_their_line(tmp_path, training, key, problem):
    other = "batch_size: 4" if key == "epochs" else "epochs: 2"
    err = _located(SynthesisConfig, tmp_path, MINIMAL + f"training:\n  {other}\n  {training}\n")
    assert err.line == 6 and err.message == f"training.{key}: {problem}"


def test_booleans_are_kept_when_they_are_real_yaml_booleans():
    config = SynthesisConfig.from_yaml(MINIMAL + "training: {augment: no, recalibrate_bn: yes}\n")
    assert config.training.augment is False and config.training.recalibrate_bn is True


def test_corruption_scale_nan_is_refused(tmp_path):
    err = _located(SynthesisConfig, tmp_path, MINIMAL + "corruptions:\n  scale: .nan\n")
    assert err.line == 5 and err.message == "corruptions.scale: expected 'auto' or a positive number (finite), got nan"


ADJUSTMENT = "dataset: {kind: microscopy, root: data}\npipeline: bi,s,me\nmodel: {name: small_cnn}\n"


@pytest.mark.parametrize(
    ("sensor", "problem"),
    [("gain: .inf", "gain > 0 (DN per electron, finite), got inf"), ("read_noise: -.inf", "read noise >= 0 (electrons, finite), got -inf")],
)
def test_sensor_values_must_be_finite(tmp_path, sensor, problem):
    err = _located(AdjustmentConfig, tmp_path, ADJUSTMENT + "sensor:\n  " + sensor + "\n")
    assert err.line == 5 and err.message == f"sensor.{sensor.split(':')[0]}: expected a {problem}"


@pytest.mark.parametrize(
    ("cls", "text", "line", "message"),
    [
        (SynthesisConfig, MINIMAL + "device: cudafoo\n", 4, "device: expected 'auto', 'cpu' or 'cuda[:N]', got 'cudafoo'"),
        (SynthesisConfig, MINIMAL + "device: [cuda]\n", 4, "device: expected 'auto', 'cpu' or 'cuda[:N]', got ['cuda']"),
        (SynthesisConfig, MINIMAL + "name: [a]\n", 4, "name: expected an experiment name (a non-empty string), got ['a']"),
        (SynthesisConfig, MINIMAL.replace("root: data", "root: null"), 1, "dataset.root: expected a folder (a non-empty string), got None"),
        (SynthesisConfig, MINIMAL.replace("root: data", "root: data, camera: 3"), 1, "dataset.camera: expected a camera name or camera YAML file, got 3"),
        (SynthesisConfig, MINIMAL.replace("root: data", "root: data, camera: dron"), 1, "dataset.camera: unknown camera 'dron'"),
        (
            SynthesisConfig,
            MINIMAL.replace("root: data", "root: data, intensity: yes"),
            1,
            "dataset.intensity: expected a published intensity (a number), got True",
        ),
        (
            SynthesisConfig,
            MINIMAL.replace("kind: microscopy", "kind: [microscopy]"),
            1,
            "dataset.kind: expected one of ['drone', 'drone-classification', 'folder', 'folder-segmentation', 'microscopy'], got ['microscopy']",
        ),
        (
            SynthesisConfig,
            MINIMAL.replace("root: data", "root: data, synthetic: {size: 65}"),
            1,
            "dataset.synthetic.size: expected an even integer >= 32, got 65",
        ),
        (SynthesisConfig, MINIMAL.replace("root: data", "root: data, synthetic: {n: '10'}"), 1, "dataset.synthetic.n: expected an integer >= 1, got '10'"),
        (
            SynthesisConfig,
            MINIMAL.replace("microscopy, root: data", "drone, root: data, synthetic: {width: 100}").replace("small_cnn", "small_unet"),
            1,
            "dataset.synthetic.width: expected an even integer >= 128, got 100",
        ),
        (SynthesisConfig, MINIMAL.replace("{name: small_cnn}", "{name: [small_cnn]}"), 3, "model.name: expected a task model name, got ['small_cnn']"),
        (
            SynthesisConfig,
            MINIMAL.replace("{name: small_cnn}", "{name: small_cnn, options: {width: 8}}"),
            3,
            "model.options.width: small_cnn has no option 'width': did you mean 'widths'?",
        ),
        (SynthesisConfig, MINIMAL + "corruptions: {severities: [3, 3]}\n", 4, "corruptions.severities[1]: 3 is listed twice"),
        (SynthesisConfig, MINIMAL + "corruptions: {severities: [3.0]}\n", 4, "corruptions.severities[0]: expected an integer in [1, 5], got 3.0"),
        (SynthesisConfig, MINIMAL + "corruptions: {names: [contrast, contrast]}\n", 4, "corruptions.names[1]: 'contrast' is listed twice"),
        (ForensicsConfig, ADJUSTMENT.replace("bi,s,me", "bi,s,ga") + "lambdas: [0, 1, 1]\n", 4, "lambdas[2]: 1 is listed twice"),
        (ForensicsConfig, ADJUSTMENT.replace("bi,s,me", "bi,s,ga") + "subsets: [[gamma]]\n", 4, "subsets[0]: expected 'all' or a stage name, got ['gamma']"),
        (ForensicsConfig, ADJUSTMENT.replace("bi,s,me", "bi,s,ga") + "distance: [l2]\n", 4, "distance: expected a distance name, got ['l2']"),
        (
            ForensicsConfig,
            ADJUSTMENT.replace("{name: small_cnn}", "{checkpoint: 3}").replace("bi,s,me", "bi,s,ga"),
            3,
            "model.checkpoint: expected a checkpoint file (a non-empty string), got 3",
        ),
        (AdjustmentConfig, ADJUSTMENT + "arms: [learned, learned]\n", 4, "arms[1]: 'learned' is listed twice"),
        (
            AdjustmentConfig,
            ADJUSTMENT + "arms: [lerned]\n",
            4,
            "arms[0]: expected one of ['augmented', 'frozen', 'learned', 'raw'], got 'lerned' (did you mean 'learned' or 'augmented'?)",
        ),
        (AdjustmentConfig, ADJUSTMENT + "intensities: [1.0, 1]\n", 4, "intensities[1]: 1 is listed twice"),
    ],
)
def test_other_values_are_checked_at_their_line(tmp_path, cls, text, line, message):
    err = _located(cls, tmp_path, text)
    assert err.line == line
    assert err.message.startswith(message)


# Every numeric key of every experiment kind, one per line, so that a bad value can be put on any one line.
SWEEP = {
    "synthesis": (
        SynthesisConfig,
        """\
name: sweep
seed: 0
threads: 2
dataset:
  kind: microscopy
  root: data
  intensity: 1.0
  synthetic:
    n: 10
    seed: 0
    size: 64
pipelines: {train: all, test: all}
model:
  name: small_cnn
  downsample: 4
training:
  epochs: 2
  batch_size: 4
  lr: 0.003
  weight_decay: 0.0
folds: 3
corruptions:
  severities: [3]
  scale: 1.5
""",
    ),
    "synthesis-drone": (
        SynthesisConfig,
        """\
dataset:
  kind: drone
  root: data
  synthetic:
    n_frames: 2
    seed: 0
    height: 256
    width: 256
    cars_per_frame: 3
pipelines: {train: all, test: all}
model: {name: small_unet}
""",
    ),
    "forensics": (
        ForensicsConfig,
        """\
dataset: {kind: microscopy, root: data}
pipeline: bi,s,ga
model: {name: small_cnn}
split:
  folds: 3
  fold: 0
samples: 16
lambdas: [0.5]
optimisation:
  steps: 5
  lr: 0.02
  batch_size: 8
tolerance: 0.05
""",
    ),
    "adjustment": (
        AdjustmentConfig,
        """\
dataset: {kind: microscopy, root: data}
pipeline: bi,s,me
intensities: [0.5]
sensor:
  gain: 2.2
  read_noise: 1.5
model: {name: small_cnn}
pipeline_lr: 0.01
folds: 3
""",
    ),
}
ALLOWED = {("forensics", "lambdas[0]", ".inf")}  # λ = ∞ is the reference pipeline itself


def _numeric_keys(text: str) -> list[tuple[int, str]]:
    """``(line index, dotted key)`` of every line of ``text`` that holds a number (or a list of one)."""
    out, parents = [], []
    for index, line in enumerate(text.splitlines()):
        indent = (len(line) - len(line.lstrip())) // 2
        key, _, value = line.strip().partition(":")
        parents[indent:] = [key]
        value = value.strip()
        if value.strip("[]").replace(".", "", 1).isdigit():
            out.append((index, ".".join(parents) + ("[0]" if value.startswith("[") else "")))
    return out


SWEEP_CASES = [
    pytest.param(kind, index, key, bad, id=f"{kind}:{key}={bad}")
    for kind, (_, text) in SWEEP.items()
    for index, key in _numeric_keys(text)
    for bad in (".nan", ".inf", "-1", "fast")
    if (kind, key, bad) not in ALLOWED
]


def test_the_sweep_covers_every_numeric_key():
    keys = {key for _, _, key, _ in (case.values for case in SWEEP_CASES)}
    assert {"seed", "threads", "dataset.intensity", "dataset.synthetic.size", "model.downsample", "training.lr", "training.weight_decay", "folds"} <= keys
    assert {"corruptions.severities[0]", "corruptions.scale", "dataset.synthetic.cars_per_frame", "split.fold", "samples", "lambdas[0]"} <= keys
    assert {"optimisation.lr", "tolerance", "intensities[0]", "sensor.gain", "sensor.read_noise", "pipeline_lr"} <= keys
    for cls, text in SWEEP.values():
        cls.from_yaml(text)  # the unchanged templates are valid


@pytest.mark.parametrize(("kind", "index", "key", "bad"), SWEEP_CASES)
def test_every_numeric_key_refuses_nan_inf_negative_and_text(tmp_path, kind, index, key, bad):
    cls, text = SWEEP[kind]
    lines = text.splitlines()
    name, _, value = lines[index].partition(":")
    lines[index] = f"{name}: {'[' + bad + ']' if value.strip().startswith('[') else bad}"
    err = _located(cls, tmp_path, "\n".join(lines) + "\n")
    assert err.line == index + 1, err
    assert err.message.startswith(f"{key}: "), err
    assert str(err).startswith(f"{tmp_path / 'exp.yaml'}:{index + 1}:")


# -- your own data and your own model ------------------------------------------------------

TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """A project folder: ``cells/<class>/<half>/*.tiff`` and ``table/labels.csv`` (raw files of a camera of its own)."""
    from rawfolders import write_class_folders, write_manifest

    project = tmp_path_factory.mktemp("project")
    write_class_folders(project / "cells", n=2)
    write_manifest(project / "table", n=2)
    (project / "lab-cam.yaml").write_text("name: lab-cam-yaml\npattern: GRBG\n")
    return project


@pytest.fixture
def own_module(monkeypatch):
    monkeypatch.syspath_prepend(str(TASKS_DIR))  # tests/tasks/factory_models.py: a user's module of model factories


OWN = """\
dataset: {kind: folder, root: cells}
pipelines: {train: ["bi,s,me"], test: ["bi,s,me"]}
model: {name: small_cnn}
"""


def _own(own_data, text, name="exp.yaml"):
    file = own_data / name
    file.write_text(text)
    return file


def test_a_folder_dataset_relative_to_the_experiment_file(own_data):
    config = SynthesisConfig.from_yaml(_own(own_data, OWN))
    assert config.dataset.kind == "folder" and config.dataset.task == "classification"
    assert config.dataset.root == own_data / "cells" and config.dataset.manifest is None and config.dataset.source == own_data / "cells"
    assert config.dataset.camera is None and config.dataset.default_camera is None  # the files' own
    text = OWN.replace("{kind: folder, root: cells}", "{kind: folder, manifest: table/labels.csv, camera: lab-cam.yaml}")
    config = SynthesisConfig.from_yaml(_own(own_data, text))
    assert config.dataset.manifest == own_data / "table" / "labels.csv" and config.dataset.root == own_data / "table"
    assert config.dataset.camera == str(own_data / "lab-cam.yaml")  # a camera file is relative to the experiment too
    # a published dataset's camera file too (it was taken relative to the working directory)
    published = SynthesisConfig.from_yaml(_own(own_data, MINIMAL.replace("root: data", "root: data, camera: lab-cam.yaml")))
    assert published.dataset.camera == str(own_data / "lab-cam.yaml") and published.dataset.default_camera == published.dataset.camera


def test_forensics_and_adjustment_experiments_on_a_folder(own_data):
    from rawfolders import LAB_CAMERA

    config = ForensicsConfig.from_yaml(_own(own_data, "dataset: {kind: folder, root: cells}\npipeline: bi,s,ga\nmodel: {name: small_cnn}\n"))
    assert config.dataset.source == own_data / "cells" and config.pipeline(LAB_CAMERA).camera == LAB_CAMERA
    assert config.subsets[0] == "all" and "gamma" in config.subsets
    adjustment = AdjustmentConfig.from_yaml(
        _own(own_data, "dataset: {kind: folder, manifest: table/labels.csv}\npipeline: bi,s,me\nmodel: {name: small_cnn}\n")
    )
    assert adjustment.dataset.manifest == own_data / "table" / "labels.csv"


@pytest.mark.parametrize(
    ("dataset", "where", "message"),
    [
        (
            "{kind: folder, root: cells, manifest: table/labels.csv}",
            "1:48",
            "dataset.manifest: a folder dataset names either root (a folder) or manifest (a CSV file), not both",
        ),
        ("{kind: folder-segmentation}", "1:10", "dataset: a folder-segmentation dataset names either root (a folder) or manifest (a CSV file), one of them"),
        ("{kind: folder, root: cells, intensity: 0.5}", "1:49", "dataset.intensity: dataset kind 'folder' takes no 'intensity'"),
        ("{kind: folder, root: cells, synthetic: {n: 3}}", "1:49", "dataset.synthetic: dataset kind 'folder' takes no 'synthetic'"),
        ("{kind: microscopy, root: cells, manifest: table/labels.csv}", "1:52", "dataset.manifest: a manifest belongs to your own data"),
        ("{kind: folder, root: nowhere}", "1:31", "dataset.root: folder {p}/nowhere not found"),
        ("{kind: folder, root: table/labels.csv}", "1:31", "dataset.root: {p}/table/labels.csv is a file; give a CSV file as manifest:"),
        ("{kind: folder, manifest: cells}", "1:35", "dataset.manifest: {p}/cells is a folder; give it as root:"),
        ("{kind: folder, manifest: gone.csv}", "1:35", "dataset.manifest: manifest {p}/gone.csv not found"),
        ("{kind: folder, root: cells/coffee/left}", "1:31", "dataset.root: raw folder {p}/cells/coffee/left: 0.tiff is not in a class folder"),
        ("{kind: folder-segmentation, root: cells}", "1:44", "dataset.root: raw folder {p}/cells holds no raw files"),
        ("{kind: folder, root: cells, camera: nikon}", "1:46", "dataset.camera: unknown camera 'nikon'"),
    ],
)
def test_folder_dataset_mistakes_are_found_when_the_experiment_is_read(own_data, dataset, where, message):
    file = _own(own_data, OWN.replace("{kind: folder, root: cells}", dataset))
    with pytest.raises(ConfigError) as info:
        SynthesisConfig.from_yaml(file)
    assert str(info.value).startswith(f"{file}:{where}: {message.format(p=own_data)}"), str(info.value)


def test_a_manifest_mistake_is_reported_at_the_csv_line(own_data):
    bad = own_data / "table" / "bad.csv"
    bad.write_text("path,label\nfiles/coffee_00.tiff,coffee\nfiles/coffee_09.tiff,coffee\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:3: raw file 'files/coffee_09.tiff' not found") as info:
        SynthesisConfig.from_yaml(_own(own_data, OWN.replace("root: cells", "manifest: table/bad.csv")))
    assert info.value.source == str(bad) and info.value.line == 3


def test_files_without_a_camera_need_dataset_camera(own_data):
    import tifffile

    for label in ("a", "b"):
        (own_data / "bare" / label).mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(own_data / "bare" / label / "x.tiff", np.zeros((4, 4), np.uint16))
    with pytest.raises(ConfigError, match=r"1:31: dataset.root: .*x.tiff carries no camera metadata.*; or give the camera of all files as dataset.camera"):
        SynthesisConfig.from_yaml(_own(own_data, OWN.replace("root: cells", "root: bare")))
    assert SynthesisConfig.from_yaml(_own(own_data, OWN.replace("root: cells", "root: bare, camera: microscopy"))).dataset.camera == "microscopy"


def test_a_model_given_by_factory_path(own_data, own_module):
    text = OWN.replace("{name: small_cnn}", '{factory: "factory_models:tiny_cnn", options: {width: 4}, downsample: 2}')
    config = SynthesisConfig.from_yaml(_own(own_data, text))
    assert config.model == ModelConfig("factory_models:tiny_cnn", 2, {"width": 4})
    segmentation = OWN.replace("kind: folder, root: cells", "kind: drone, root: data").replace(
        "{name: small_cnn}", '{factory: "factory_models:TinySegmenter", task: segmentation}'
    )
    assert SynthesisConfig.from_yaml(segmentation).model.name == "factory_models:TinySegmenter"


@pytest.mark.parametrize(
    ("model", "where", "message"),
    [
        (
            '{factory: "factory_models:tiny_cnn", name: small_cnn}',
            "3:18",
            "model.factory: give either name (a registered task model, see `ispkit models`) or factory",
        ),
        (
            "{downsample: 2}",
            "3:8",
            "model: give either name (a registered task model, see `ispkit models`) or factory ('package.module:function'), one of them",
        ),
        (
            '{factory: "factory_models:tiny_cnn", task: segmentation}',
            "3:51",
            "model.task: a segmentation model, but dataset kind 'folder' is a classification task",
        ),
        ('{factory: "factory_models:tiny_cnn", task: detection}', "3:51", "model.task: expected one of ['classification', 'segmentation'], got 'detection'"),
        ("{name: small_cnn, task: classification}", "3:32", "model.task: a registered model has its own task; task goes with factory"),
        ('{factory: "factory_models:tiny_cnn", options: {depth: 3}}', "3:62", "model.options.depth: factory_models:tiny_cnn has no option 'depth'"),
        ('{factory: "my_lab.nets:resnet"}', "3:18", "model.factory: model factory 'my_lab.nets:resnet': cannot import module 'my_lab.nets'"),
        (
            '{factory: "factory_models:NOT_CALLABLE"}',
            "3:18",
            "model.factory: model factory 'factory_models:NOT_CALLABLE': 'NOT_CALLABLE' is a int, not a function",
        ),
        ('{factory: "nets/tiny.py:net"}', "3:18", "model.factory: model factory 'nets/tiny.py:net': expected 'package.module:function'"),
        ("{factory: 3}", "3:18", "model.factory: expected a factory path 'package.module:function', got 3"),
    ],
)
def test_factory_model_mistakes_are_found_when_the_experiment_is_read(own_data, own_module, model, where, message):
    file = _own(own_data, OWN.replace("{name: small_cnn}", model))
    with pytest.raises(ConfigError) as info:
        SynthesisConfig.from_yaml(file)
    assert str(info.value).startswith(f"{file}:{where}: {message}"), str(info.value)
