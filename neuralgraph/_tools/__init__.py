"""What users run around the engine: the ``neuralgraph`` command, drawings, plots, profiling, and
the node contract suite with its pytest plugin."""
