"""Differential tests: cyclegc against the built-in collector (see graphs.py)."""
