"""The only package that speaks SQL: ``db`` (the handle: connections, transactions, schema)
and one module per table family (``inbox``, ``incidents``, ``actions``, ``audit``, ``state``,
``metrics``, ``rca``), plus the read side of the dashboard (``reporting``), the shared WHERE
builder (``query``) and the intake's write probe (``heartbeat``)."""
