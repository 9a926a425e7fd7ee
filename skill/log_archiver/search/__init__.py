"""The derived full-text index of archived logs: built while archiving, synced from the
store, queried."""
