"""Benchmarks: `make bench` runs them against PostgreSQL and gunicorn and prints a table."""
