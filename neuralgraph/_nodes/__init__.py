"""What a node is: the ``Node`` base class, port declarations, timed events, running-state
snapshots, and the kernel and buffer helpers nodes use (re-exported by :mod:`neuralgraph.plugin`)."""
