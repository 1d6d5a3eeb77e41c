"""Patch text to a checked patch: TOML with locations, settings and limits, the validated spec,
then graph analysis (connection ends, rates, cycles, order, lanes) into a :class:`Patch`."""
