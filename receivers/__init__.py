"""The HTTP edge: one module per sender family turns its payloads into ``ErrorEvent`` values.

Parsers are pure functions (bytes or dict -> events) so that the HTTP handlers, the CLI's
``simulate`` and the tests all call the same code; ``app.py`` wires them to Litestar.
"""
