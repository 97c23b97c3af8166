"""Root-cause analysis of failures no rule covers: redacted prompt, cache, budget, LLM or the
offline catalog. ``make_rca(settings, db, actions)`` gives the worker's ``rca`` hook."""

from engine.analysis.model import Analysis
from engine.analysis.service import Analyzer, make_rca

__all__ = ["Analysis", "Analyzer", "make_rca"]
