"""Secure aggregation's arithmetic (Bonawitz et al. 2017): pairwise masks and Shamir secret
sharing. No network, no chain.
"""
