"""Benchmarks run against the real server under gunicorn (`./dev bench`)."""
