"""Helpers shared by several test modules (tests/ is put on sys.path by tests/conftest.py)."""
