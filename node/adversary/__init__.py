"""Attacks (poisoning, privacy attacks), used only by benchmarks and tests. Never imported by a
real peer.
"""
