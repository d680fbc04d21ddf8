"""Simulated campaigns without network or chain, the protection modes' arithmetic for benchmarks,
and the one-process demo.
"""
