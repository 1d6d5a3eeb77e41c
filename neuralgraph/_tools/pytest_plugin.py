"""pytest integration of the node contract suite (loaded through the ``pytest11`` entry point).

A plugin author's whole contract test::

    def test_contract(node_contract):
        node_contract(MyNode)

or, to check every node type a registry holds, one test per type::

    from neuralgraph.testing import contract_cases

    @pytest.mark.parametrize("node_cls", contract_cases())
    def test_contract(node_contract, node_cls):
        node_contract(node_cls)

The grid is trimmed (``quick``) unless ``NEURALGRAPH_CONTRACT_FULL=1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from neuralgraph._nodes.node import Node
from neuralgraph._tools.contract import ContractReport, contract_cases, full_grid_requested, run_contract_suite


@pytest.fixture
def node_contract() -> Callable[..., ContractReport]:
    """A function that runs the contract suite on a node class and fails the test on any failure.

    Keyword arguments go to :func:`neuralgraph.testing.run_contract_suite`; ``quick`` defaults to
    True unless ``NEURALGRAPH_CONTRACT_FULL=1``.
    """

    def run(node_cls: type[Node], **kwargs: Any) -> ContractReport:
        kwargs.setdefault("quick", not full_grid_requested())
        report = run_contract_suite(node_cls, **kwargs)
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report

    return run


__all__ = ["contract_cases", "node_contract"]
