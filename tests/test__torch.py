"""The lazy torch of ``ispkit._torch``: nothing is imported until an attribute is read."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ispkit._torch import LazyModule, is_tensor, no_grad


def test_a_lazy_module_imports_on_the_first_attribute_and_not_before():
    lazy = LazyModule("ispkit_no_such_module_x")
    assert "(imported)" not in repr(lazy)
    with pytest.raises(ModuleNotFoundError, match="ispkit_no_such_module_x"):
        _ = lazy.anything


def test_dunder_lookups_do_not_import():
    """``inspect.unwrap`` and doctest's finder look for ``__wrapped__`` on every global."""
    lazy = LazyModule("ispkit_no_such_module_y")
    assert not hasattr(lazy, "__wrapped__")
    assert repr(lazy) == "<lazy module 'ispkit_no_such_module_y'>"


def test_the_proxy_hands_out_the_modules_attributes():
    import torch

    lazy = LazyModule("torch")
    assert lazy.Tensor is torch.Tensor and lazy.float64 is torch.float64 and lazy.load() is torch
    assert "zeros" in dir(lazy)


def test_is_tensor_tells_tensors_from_everything_else():
    import torch

    assert is_tensor(torch.zeros(2))
    assert not is_tensor(np.zeros(2)) and not is_tensor([0.0]) and not is_tensor(None)


def test_is_tensor_does_not_import_torch():
    code = "import sys, numpy as np\nfrom ispkit._torch import is_tensor\nassert not is_tensor(np.zeros(2))\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_no_grad_runs_the_function_without_autograd_and_keeps_its_name():
    import torch

    @no_grad
    def doubled(x: torch.Tensor) -> torch.Tensor:
        """Twice x."""
        return 2 * x

    x = torch.ones(2, requires_grad=True)
    assert not doubled(x).requires_grad and (2 * x).requires_grad
    assert doubled.__name__ == "doubled" and doubled.__doc__ == "Twice x."
