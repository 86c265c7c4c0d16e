"""AI-assisted labeling: model management, the one inference worker, proposals, click-to-segment,
the classical smart select, and batch runs. Plain Python (no Qt); used by the bridge handlers
(backend/api/ai_handlers.py) and the ``autolabel`` command. See docs/adr/0006.
"""
