"""log-archiver: archive the logs of a GitHub issue to durable storage."""

__version__ = "0.1.0"
