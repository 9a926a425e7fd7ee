"""Getting logs back: read, list and restore, every byte checked against the index."""
