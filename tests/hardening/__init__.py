"""Hardening tests: bad inputs, crashes, untrusted files, resource faults, concurrency."""
