"""The contract suite over every registered node type (built-in and installed plugins).

CI runs the trimmed grid (``quick``); ``NEURALGRAPH_CONTRACT_FULL=1`` runs every sample rate x
block size. Nodes that have ports only with a file get one through ``CONTRACT_PARAMS``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import neuralgraph as ng
from neuralgraph.testing import CHECKS, full_grid_requested, run_contract_suite

ROOT = Path(__file__).resolve().parent.parent

#: Parameters for node types whose default construction has no ports (a model file is needed).
CONTRACT_PARAMS = {
    "onnx.model": [{"model": str(ROOT / "graphs" / "models" / "ddsp_flute.onnx")}],
}

TYPES = sorted(ng.default_registry().node_types)


def test_the_registry_offers_every_built_in_type():
    assert len(TYPES) >= 40 and {"osc.saw", "filter.lowpass", "midi.voices", "io.output", "onnx.model"} <= set(TYPES)


@pytest.mark.parametrize("type_name", TYPES)
def test_node_type_honours_the_contract(type_name):
    node_cls = ng.default_registry().node_class(type_name)
    report = run_contract_suite(node_cls, quick=not full_grid_requested(), params=CONTRACT_PARAMS.get(type_name))
    assert report.checks == list(CHECKS)
    assert report.ok, str(report)
