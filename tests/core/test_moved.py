"""The module paths of convlab 0.1 still import for one release, and say where their names now live."""

from __future__ import annotations

import importlib

import pytest

import convlab as cl
from convlab import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_every_old_path_imports_and_names_its_new_home(old):
    module = importlib.import_module(old)
    public = [name for target in _moved.MOVED[old] for name in dir(importlib.import_module(target))]
    name = next(name for name in public if not name.startswith("__"))
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated .* import {name} from convlab\."):
        getattr(module, name)


def test_renamed_names_and_old_imports_keep_working():
    from convlab.nn.handwritten import HandWrittenConv2dDef
    from convlab.nn.losses import SquaredError

    with pytest.warns(DeprecationWarning, match="convlab.layers is deprecated"):
        from convlab.layers import HandWrittenConv2D
    assert HandWrittenConv2D is HandWrittenConv2dDef
    with pytest.warns(DeprecationWarning, match="import SquaredError from convlab.nn.losses"):
        assert cl.layers.SquaredError is SquaredError
    with pytest.warns(DeprecationWarning, match="convlab.ops is deprecated"):
        assert importlib.import_module("convlab.ops").corr2d is cl.corr2d


def test_the_public_names_are_not_shadowed_by_old_paths():
    importlib.import_module("convlab.gradcheck")
    assert callable(cl.gradcheck) and cl.gradcheck.__module__ == "convlab.core.gradcheck"
    assert importlib.import_module("convlab.kernels") is cl.kernels
    assert importlib.import_module("convlab.models") is cl.models


def test_an_unknown_name_of_an_old_path_is_an_attribute_error():
    with pytest.raises(
        AttributeError,
        match=r"'convlab.ops' \(moved to convlab.core.ops, convlab.core.padding\) has no attribute 'nope'",
    ):
        _ = importlib.import_module("convlab.ops").nope
