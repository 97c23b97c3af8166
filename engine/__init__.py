"""Remediator: rules-driven auto-remediation for Azure data platforms."""

__version__ = "0.1.0"
