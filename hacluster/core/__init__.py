"""The pure, deterministic core: no I/O, no clock, no randomness of its own.

Everything here imports only the standard library and ``hacluster.core`` (plus the
exception types in ``hacluster.errors``); ``tests/unit/test_core_purity.py`` enforces it.
"""
