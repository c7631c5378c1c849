"""End-to-end tests: the real server as a subprocess, driven by real clients (see conftest.py)."""
