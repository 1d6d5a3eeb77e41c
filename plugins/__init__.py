"""neuralgraph's built-in node plugins.

Each module registers its node types through the ``neuralgraph`` entry-point group, exactly as a
third-party package does; the core never imports this package.
"""
