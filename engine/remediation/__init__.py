"""Remediation: an incident's actions from planning to the settling of each attempt.

- ``plan``: render a rule's actions and store them as rows (one attempt), render a row again
  when it runs;
- ``run``: run the due rows: the intent, the pre-check, the call, the outcome, then settle;
- ``precheck``: read the target's state before a call (and for dry-run rows, read only);
- ``outcome``: record how a row ended (succeeded with its probe, failed, skipped);
- ``settle``: decide an attempt once its rows are done: resolve, verify, the next attempt, or
  ``on_failure`` and escalate (the incident's moves are engine/lifecycle.py's);
- ``reconcile``: rows a crash left ``started``, asked of the cloud, never re-sent blindly;
- ``probe``: poll what an action started until it ends;
- ``analyse``: the root-cause analysis of an incident, audited.

Deciding never calls out and never runs a row: ``settle`` plans (a next attempt,
``on_failure``) and says so; whoever settled runs what is due (``run.run_due``).
"""
