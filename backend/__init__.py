"""Fieldmark backend: the pure core (no Qt) plus the Qt shell in ``backend.gui``."""

__version__ = "0.1.0"
