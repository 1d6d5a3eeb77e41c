"""The public face for testing nodes and patches: allocation checks and the node contract suite.

``assert_no_allocations(run)`` proves a piece of audio-thread code allocates no buffers in steady
state (tracemalloc; run it at a large block, 4096 frames, so any array temporary stands far
above Python's small objects). ``run_contract_suite(NodeClass)`` runs every check a node type
must survive; ``contract_cases()`` gives one ``pytest.param`` per installed node type. Installing
neuralgraph also adds the ``node_contract`` pytest fixture::

    def test_contract(node_contract):
        node_contract(MyNode)
"""

from __future__ import annotations

from neuralgraph._tools.allocations import (
    DEFAULT_TOLERANCE,
    AllocationError,
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
    "assert_no_allocations",
    "check_node",
    "contract_cases",
    "full_grid_requested",
    "measure_allocations",
    "run_contract_suite",
]
