"""Cryptography: CKKS (ckks/), pairwise-masked secure aggregation with Shamir shares (secagg/), and
the sealing of updates to registered peers.
"""
