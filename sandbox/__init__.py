"""Loopback emulators of the Databricks, ADF (ARM), Synapse and OpenAI APIs.

Used by ``remediator demo`` and the tests through the real SDK clients. Imports nothing from
the product, and the product never imports it: an emulator that shares code with its client
hides that client's bugs. See docs/SANDBOX.md.
"""
