"""The archive's lifetime: retention policy, legal hold, garbage collection."""
