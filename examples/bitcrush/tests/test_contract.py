"""The example plugin holds itself to the same node contract as the built-ins: one call."""

from ng_bitcrush import BitCrush


def test_bitcrush_honours_the_node_contract(node_contract):
    report = node_contract(BitCrush)  # the pytest fixture neuralgraph installs; fails with the report
    assert not report.failures
