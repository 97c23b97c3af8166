"""Remediation actions: one module per target system, registered by hand in ``registry``."""
