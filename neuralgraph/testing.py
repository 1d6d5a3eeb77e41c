"""The public face for testing nodes and patches: allocation checks and the node contract suite.

``assert_no_allocations(run)`` proves a piece of audio-thread code allocates no buffers in steady
state: numpy's data allocations are counted one by one (any array of any size, at any block
size, fails; ``array_allocations(run)`` lists their sizes), and tracemalloc's peak growth per
call catches everything else. ``run_contract_suite(NodeClass)`` runs every check a node type
must survive; ``contract_cases()`` gives one ``pytest.param`` per installed node type. Installing
neuralgraph also adds the ``node_contract`` pytest fixture::

    def test_contract(node_contract):
        node_contract(MyNode)
"""

from __future__ import annotations

from neuralgraph._tools.allocations import (
    DEFAULT_TOLERANCE,
    AllocationError,
    array_allocations,
    assert_no_allocations,
    measure_allocations,
)
from neuralgraph._tools.contract import (
    BLOCK_SIZES,
    CHECKS,
    QUICK_BLOCK_SIZES,
    QUICK_SAMPLE_RATES,
    SAMPLE_RATES,
    ContractError,
    ContractFailure,
    ContractReport,
    Harness,
    check_node,
    contract_cases,
    full_grid_requested,
    run_contract_suite,
)

__all__ = [
    "BLOCK_SIZES",
    "CHECKS",
    "DEFAULT_TOLERANCE",
    "QUICK_BLOCK_SIZES",
    "QUICK_SAMPLE_RATES",
    "SAMPLE_RATES",
    "AllocationError",
    "ContractError",
    "ContractFailure",
    "ContractReport",
    "Harness",
    "array_allocations",
    "assert_no_allocations",
    "check_node",
    "contract_cases",
    "full_grid_requested",
    "measure_allocations",
    "run_contract_suite",
]
