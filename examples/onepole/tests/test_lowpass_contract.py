"""The example plugin holds itself to the same node contract as the built-ins: one call."""

from ng_onepole import OnePoleLowpass


def test_lowpass_honours_the_node_contract(node_contract):
    report = node_contract(OnePoleLowpass)  # includes the check that kernel() and process() agree
    assert not report.failures
