"""pluggy: the hook specifications and the registry of node types and backends gathered from the
``neuralgraph`` entry points."""
