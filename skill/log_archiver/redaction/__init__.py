"""Secrets never leave the machine: rules and the streaming redactor, a stage before compression."""
