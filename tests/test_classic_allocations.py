"""Oscillator, noise and filter nodes allocate nothing per block (tracemalloc, block 4096):
2 lanes with modulated inputs, and 4 or 9 lanes with inputs held (the SVF's four-lanes path, and
its vector path: a vector of 8, then one of 1)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import classic_types

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate
from neuralgraph.testing import assert_no_allocations

TYPES = classic_types(ng.Registry.load())
BLOCK = 4096


@pytest.fixture(scope="module")
def node_classes():
    registry = ng.Registry.load()
    return {name: registry.node_class(name) for name in TYPES}


@pytest.mark.parametrize("held,lanes", [(False, 2), (True, 4), (True, 9)], ids=["modulated", "held", "held-9"])
@pytest.mark.parametrize("type_name", TYPES)
def test_process_does_not_allocate(node_classes, type_name, held, lanes):
    node = node_classes[type_name]()
    inputs = node.inputs()
    ctx = PrepareContext(
        sample_rate=48000.0,
        block_size=BLOCK,
        lanes=lanes,
        input_lanes={p: lanes for p in inputs},
        output_lanes={p: lanes for p in node.outputs()},
    )
    node.prepare(ctx)
    rng = np.random.default_rng(0)
    arrays = {}
    for name, decl in inputs.items():
        width = 1 if decl.rate is Rate.CONTROL else BLOCK
        if name == "in":
            value = rng.uniform(-1, 1, (lanes, width)).astype(np.float32)
        elif held:
            value = np.full((lanes, width), decl.init, np.float32)
        else:  # modulated around the default so per-sample coefficient paths run
            value = (decl.init * (1.0 + 0.1 * rng.uniform(-1, 1, (lanes, width)))).astype(np.float32)
        value.flags.writeable = False
        arrays[name] = value
    outs = Ports({name: np.zeros((lanes, BLOCK), np.float32) for name in node.outputs()})
    ins = Ports(arrays)
    node.process(ins, outs, BLOCK)  # compile outside the measurement
    assert_no_allocations(lambda: node.process(ins, outs, BLOCK), calls=50)
    for name in outs:
        assert np.all(np.isfinite(outs[name]))
