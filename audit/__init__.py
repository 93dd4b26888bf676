"""Tamper-evident audit log of a run (hash-chained, optionally Ed25519-signed) and empirical privacy audits.

A bottom-layer library: it imports only the standard library, third-party packages and `storage`.
"""
