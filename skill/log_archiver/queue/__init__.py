"""Many issues at once: batch archive, jobs on an existing broker, the worker."""
