"""Consensus arithmetic: the aggregation rules every peer applies alike (:mod:`node.consensus.rules`)."""
