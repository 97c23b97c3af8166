"""Playbooks: the schema, the YAML loader, the matcher, templates and playbook tests."""
