"""Errors a user can act on, importable without the heavy parts (the CLIs turn them into one line)."""

from __future__ import annotations


class StepError(Exception):
    """A step misbehaved or was misconfigured; the message names the step."""


class UsageError(ValueError):
    """Options that do not go together (the CLIs answer it as Click answers a usage error: exit status 2)."""
