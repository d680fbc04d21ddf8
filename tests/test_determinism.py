"""Every honest peer computes the same aggregate bits, whatever order updates arrived in.

Two separate OS processes (different hash seeds, different arrival orders) aggregate the
same committed updates and must print the same SHA-256.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import json, random, sys
import numpy as np
from node.aggregation import aggregate_by_peer
from node.update import parameters_hash
spec = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
updates = {addr: rng.normal(size=spec["d"]).astype(np.float32) for addr in spec["addresses"]}
weights = {addr: float(i + 1) for i, addr in enumerate(spec["addresses"])}
items = list(updates.items())
random.Random(spec["shuffle"]).shuffle(items)   # a different arrival order per process
print(parameters_hash(aggregate_by_peer(spec["rule"], dict(items), weights, f=1)).hex())
"""


@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed-mean", "multi-krum", "bulyan", "geomed"])
def test_two_processes_agree_bit_for_bit(rule):
    addresses = [f"0x{i:040x}" for i in range(7, 0, -1)]
    hashes = set()
    for shuffle in (1, 2):
        spec = json.dumps({"d": 20_000, "addresses": addresses, "shuffle": shuffle, "rule": rule})
        env = {**os.environ, "PYTHONHASHSEED": str(shuffle)}
        out = subprocess.run([sys.executable, "-c", SCRIPT, spec], capture_output=True, text=True,
                             env=env, timeout=120, check=True)
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1, hashes


def test_same_address_twice_is_refused():
    from node.aggregation import aggregate_by_peer
    with pytest.raises(ValueError, match="same address"):
        aggregate_by_peer("median", {"0xAb": np.zeros(2), "0xab": np.ones(2)})
