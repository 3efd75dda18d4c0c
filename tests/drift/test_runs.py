"""The run plumbing the three drift controls share: run folder, dataset, device, folds, views, seeded networks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ispkit.drift.runs import ViewBank, load_raw_set, open_run, resolve_device, saved_folds, seeded_network
from ispkit.errors import InputError
from ispkit.pipeline import Pipeline


def test_open_run_makes_the_folder_and_refuses_another_experiment(tmp_path, tiny):
    config = tiny.config("synthesis")
    run_dir, device, data = open_run(tmp_path / "run", config, None, downsample=2)
    assert run_dir == (tmp_path / "run").absolute() and device.type in ("cpu", "cuda")
    assert (run_dir / "config.yaml").read_text(encoding="utf-8") == config.text
    n = len(data.raws)
    assert n > 20 and data.raws.shape[1:] == (1, 64, 64) and data.task == "classification" and len(data.groups) == len(data.targets) == n
    assert open_run(tmp_path / "run", config, None, downsample=2)[0] == run_dir  # the same experiment resumes
    with pytest.raises(InputError, match="holds a run of a different experiment"):
        open_run(tmp_path / "run", tiny.config("synthesis", seed=1), None, downsample=2)
    with pytest.raises(InputError, match="is not visible on"):
        open_run(tmp_path / "elsewhere", config, None, downsample=2, create=False)  # a Dask worker joins a missing folder


def test_saved_folds_are_written_once_and_a_changed_dataset_is_refused(tmp_path, tiny):
    config = tiny.config("synthesis")
    run_dir, _, data = open_run(tmp_path / "run", config, None, downsample=2)
    folds = saved_folds(run_dir, data, config)
    assert len(folds) == 2 and sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(len(data.raws)))
    assert json.loads((run_dir / "folds.json").read_text()) == [[train.tolist(), test.tolist()] for train, test in folds]
    again = saved_folds(run_dir, data, config)
    assert all(np.array_equal(a, b) for pair, other in zip(folds, again, strict=True) for a, b in zip(pair, other, strict=True))
    data.groups = data.groups[::-1]  # the same images grouped otherwise: other folds
    with pytest.raises(InputError, match="the dataset changed since this run started"):
        saved_folds(run_dir, data, config)


def test_seeded_network_depends_on_the_seed_alone(tmp_path, tiny):
    config = tiny.config("synthesis")
    _, device, data = open_run(tmp_path / "run", config, None, downsample=2)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = seeded_network(config.model, data, 7, device)
    assert torch.equal(torch.rand(1), before)  # the global random state is untouched
    second = seeded_network(config.model, data, 7, device)
    other = seeded_network(config.model, data, 8, device)
    weights = [torch.cat([p.detach().flatten() for p in net.parameters()]) for net in (first, second, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert first.classes == data.classes and first.downsample == 2


def test_view_bank_caches_within_budget_and_streams_beyond(tiny):
    config = tiny.config("synthesis")
    data = load_raw_set(config.dataset)
    pipelines = {p: Pipeline.preset(p, camera=data.camera) for p in ("bi,s,me", "me,u,ga")}
    cached = ViewBank(data.raws, pipelines, downsample=2, device=torch.device("cpu"))
    streamed = ViewBank(data.raws, pipelines, downsample=2, device=torch.device("cpu"), max_bytes=1)
    index = torch.tensor([3, 0, 5])
    expected = torch.nn.functional.avg_pool2d(pipelines["me,u,ga"].to_torch()(data.raws[index]), 2)
    torch.testing.assert_close(cached.source("me,u,ga")(index), expected)
    torch.testing.assert_close(streamed.source("me,u,ga")(index), expected)
    assert "me,u,ga" in cached._cache and not streamed._cache


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_raw_set_says_whether_the_data_are_synthetic(tmp_path, tiny, microscopy_root):
    assert load_raw_set(tiny.config("synthesis").dataset).synthetic  # the generator's SYNTHETIC.txt marker
    real = shutil.copytree(microscopy_root, tmp_path / "copy")
    (real / "microscopy" / "SYNTHETIC.txt").unlink()
    assert not load_raw_set(tiny.config("synthesis", dataset={"root": real}).dataset).synthetic
