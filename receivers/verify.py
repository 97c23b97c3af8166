"""Walking the audit log's hash chain for a request (``GET /api/audit/verify``, the audit
page's ``?verify=true``): one walk at a time, and never for a page of another site.

A walk reads every record (about 2 minutes per million) on a worker thread. A GET passes the
cross-site check of receivers/csrf.py, and a browser sends the credentials it cached for
this host with a sibling site's ``<img src=".../api/audit/verify">``: a page on another port
of the host could start as many walks as it has images and hold every worker thread. So a
browser's request from another site is refused (403, as a cross-site POST), and a second
walk while one runs is answered 409.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.audit import VerifyResult
from engine.store import audit as audit_store
from engine.store.db import Database
from receivers.csrf import CrossSiteRequest, cross_site, wanted_headers

__all__ = ["BUSY", "RUNNING", "VerifyBusy", "verify"]

BUSY = ("a verification of the audit chain is under way (it reads every record): try again "
        "when it is done")
RUNNING = threading.Lock()
"""Held while a walk runs (one per process)."""


class VerifyBusy(Exception):
    """Another walk of the chain runs in this process (answered 409)."""


def verify(db: Database, scope: Any) -> VerifyResult:
    """The chain's verification for the request of ``scope``; :class:`CrossSiteRequest` for
    another site's page, :class:`VerifyBusy` while another runs."""
    reason = cross_site(wanted_headers(scope["headers"]))
    if reason is not None:
        raise CrossSiteRequest(reason.replace("may change anything here",
                                              "may ask for this (it reads every record)"))
    if not RUNNING.acquire(blocking=False):
        raise VerifyBusy(BUSY)
    try:
        return audit_store.verify_chain(db)
    finally:
        RUNNING.release()
