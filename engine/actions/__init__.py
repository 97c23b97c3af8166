"""The registered remediation actions: one module per target system, each a typed ``Params``
and a ``run``, written out by hand in ``registry``; they reach the clouds through
``engine.cloud``."""
