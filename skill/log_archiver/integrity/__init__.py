"""Verification of the index against the store and the disk, as typed findings."""
