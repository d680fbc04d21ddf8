"""Hospitals and the chain of a :class:`~netlab.lab.Lab`: anvil in the chain namespace, and one
real ``medmesh node run`` process per hospital namespace (``ip netns exec``), set up as
:class:`node.service.localnet.LocalNet` sets up loopback nodes.

The test process deploys and registers through the lab's loopback forwarder to the chain; the
nodes' configs then point at the chain's own address, listen on their namespace's address, and
list the other hospitals at their relay aliases (so every peer-to-peer byte crosses the relay)."""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node_support import started

from ledger import Anvil
from netlab.lab import CHAIN, CHAIN_PORT, NODE_PORT, Lab
from node.service.config import template
from node.service.localnet import LocalNet, NodeProcess

__all__ = ["LabNet", "lab_chain", "running_lab"]


class _NsAnvil(Anvil):
    """Anvil inside the chain namespace; readiness (and ``__enter__``'s URL) through the forwarder."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(
            CHAIN_PORT, block_time=1, host=lab.ip[CHAIN], prefix=lab.exec_prefix(CHAIN)
        )
        self._proxy = lab.proxy_rpc

    @property
    def rpc(self) -> str:
        return self._proxy


def lab_chain(lab: Lab) -> Anvil:
    return _NsAnvil(lab)


class LabNet(LocalNet):
    def __init__(
        self,
        lab: Lab,
        root: Path,
        *,
        commit_window: int,
        attest_window: int,
        overrides: dict[str, dict[str, Any]] | None = None,
        committee: int = 0,
    ) -> None:
        super().__init__(
            root,
            lab.proxy_rpc,
            lab.hospitals,
            commit_window=commit_window,
            attest_window=attest_window,
            overrides=overrides,
            committee=committee,
        )
        self.lab = lab

    def _init(self, name: str, site: int, sites: int) -> None:
        super()._init(name, site, sites)
        # the others reach this node at its relay alias
        self.multiaddrs[name] = re.sub(
            r"^/ip4/[^/]+/tcp/\d+",
            f"/ip4/{self.lab.alias[name]}/tcp/{NODE_PORT}",
            self.multiaddrs[name],
        )

    def setup(self) -> None:
        super().setup()
        for name in self.names:
            path = self.configs[name]
            raw = tomllib.loads(path.read_text())
            raw["node"]["listen"] = f"/ip4/{self.lab.ip[name]}/tcp/{NODE_PORT}"
            raw["chain"]["rpc"] = self.lab.chain_rpc
            path.write_text(template(raw))

    def start(self, name: str, *extra: str) -> NodeProcess:
        proc = NodeProcess(
            name, self.configs[name], self.root, self.env, extra, prefix=self.lab.exec_prefix(name)
        )
        self.procs[name] = proc
        return proc


@contextlib.contextmanager
def running_lab(
    lab: Lab,
    root: Path,
    windows: int,
    overrides: dict[str, dict[str, Any]],
    committee: int = 0,
) -> Iterator[LabNet]:
    """The lab's chain and its hospitals' node processes, all started; stopped on exit.
    ``committee``: the aggregation committee's size k (0: every member, docs/committee.md)."""
    with lab_chain(lab):
        net = LabNet(
            lab,
            root,
            commit_window=windows,
            attest_window=windows,
            overrides=overrides,
            committee=committee,
        )
        with started(net):
            yield net
