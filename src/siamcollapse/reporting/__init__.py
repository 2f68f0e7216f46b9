"""Reporting: run tables, spectrum files and figures."""
