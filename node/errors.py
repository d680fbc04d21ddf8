"""One exception root for medmesh, web3.py style: every error raised on purpose is a
:class:`MedmeshError` *and* the builtin it stands for, so a caller may catch either
(``except MedmeshError`` for "anything medmesh refused", ``except ValueError`` as before).

The tree (where each class is defined in brackets)::

    MedmeshError                          [here]           node's root
    ├── Rejected                          [node.protection.base]  a committed update refused
    ├── NodeStopped                       [node.service.failures] the node stops on purpose
    ├── BlobRefused                       [here]           a blob handler refuses a message
    │   ├── NotAuthorized (PermissionError) [here]  sender not allowed (or rate-limited)
    │   └── NotHeld (LookupError)         [here]           asked for something this peer lacks
    ├── ValueError flavour
    │   ├── AggregationError              [here]           a rule (node.consensus.rules) cannot aggregate
    │   ├── CKKSError                     [node.crypto.ckks.params]
    │   ├── CommitteeError                [node.consensus.committee]
    │   ├── ConfigError                   [node.service.config]
    │   ├── ControlError                  [node.consensus.protocol]
    │   ├── DataError                     [node.data.samples]
    │   ├── RelayError                    [node.peer.relay]
    │   ├── ScenarioError                 [node.incentives.scenario]
    │   ├── SealError                     [node.crypto.sealing]
    │   ├── SecAggError                   [node.crypto.secagg.masking]
    │   ├── SetupSumError                 [node.peer.setupsum]
    │   ├── ShamirError                   [node.crypto.secagg.shamir]
    │   ├── StateError                    [node.service.state]
    │   └── UpdateFormatError             [node.consensus.update]
    └── RuntimeError flavour
        ├── BudgetExhausted               [node.learning.privacy]
        ├── MonitoringError               [node.service.statuspage]
        ├── PrivacyFloorError             [node.service.privacyfloor]
        └── RunnerError                   [node.service.failures]

    ledger.LedgerError                    the chain client's root (ContractRevert below it)
    gossip.GossipError                    the libp2p layer's root

Why three roots and not one: ``ledger`` and ``gossip`` are the bottom layers (they import no
``node`` module), so a root they shared with ``node`` would have to live in one of them, and
importing any module of either package runs its ``__init__`` (web3 or py-libp2p, seconds).
Every node module that raises, down to :mod:`node.crypto.secagg.shamir` and the CKKS worker processes, would
pay that on start (``import node.crypto.ckks.scheme`` measured 0.45 s before, 3.2 s with the root in
``ledger.errors``, on a busy shared 2-core machine). So the pipeline names the roots it
expects, ``(MedmeshError, LedgerError)`` (:data:`node.peer.contribute.ROUND_ERRORS`; gossip errors never
reach it: every transfer catches its own). This module imports nothing.
``tests/unit/node/test_interfaces.py`` checks this drawing against the classes.
"""

from __future__ import annotations

__all__ = ["AggregationError", "BlobRefused", "MedmeshError", "NotAuthorized", "NotHeld"]


class MedmeshError(Exception):
    """Root of every error node raises on purpose; its message is one readable line. A bare
    ``ValueError`` or ``RuntimeError`` that is not also a ``MedmeshError`` is a programming
    error, and the round pipeline lets it propagate."""


class AggregationError(MedmeshError, ValueError):
    """An aggregation rule cannot aggregate this set of updates (too few for its f, NaN values,
    weights that do not fit); the round goes on without an aggregate from this peer."""


class BlobRefused(MedmeshError):
    """A blob handler refuses a message; the gossip layer answers the sender with a rejection
    carrying this one-line reason."""


class NotAuthorized(BlobRefused, PermissionError):
    """The sender may not send this (not an active member, rate-limited, asked twice)."""


class NotHeld(BlobRefused, LookupError):
    """The sender asked for something this peer does not hold."""
