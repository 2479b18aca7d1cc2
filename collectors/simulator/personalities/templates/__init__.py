"""Capture-derived reply templates (JSON data copied from tests/captures/device-responses).

See collectors/simulator/SOURCES.md for where each file came from.
"""
