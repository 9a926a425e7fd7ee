"""The append-only audit trail of every change to the archive."""
