"""medmesh's chain client: compile, deploy, devnet, transact and audit.

Exceptions: every failure raises :class:`LedgerError` (one readable line); a contract revert
raises its subclass :class:`ContractRevert`, e.g.
``RoundLedgerAlreadyCommitted(round=3, account=0x..)``.
"""

from .audit import collect, format_report
from .awards import AwardReceipt, DistributorClient, deploy_distributor, scheme_id
from .chain import (
    advance_time,
    connect,
    dev_account,
    fork_embedded,
    fund,
    is_embedded,
    load_state,
    save_state,
)
from .cli import register_commands
from .client import LedgerClient
from .compile import compile_contracts
from .deploy import DEFAULT_BOND, Deployment, deploy
from .devnet import Anvil
from .errors import ContractRevert, LedgerError
from .records import Attestation, Commitment, Identity, RoundInfo, institution_id, vote_key

__all__ = [
    "DEFAULT_BOND",
    "Anvil",
    "Attestation",
    "AwardReceipt",
    "Commitment",
    "ContractRevert",
    "Deployment",
    "DistributorClient",
    "Identity",
    "LedgerClient",
    "LedgerError",
    "RoundInfo",
    "advance_time",
    "collect",
    "compile_contracts",
    "connect",
    "deploy",
    "deploy_distributor",
    "dev_account",
    "fork_embedded",
    "format_report",
    "fund",
    "institution_id",
    "is_embedded",
    "load_state",
    "register_commands",
    "save_state",
    "scheme_id",
    "vote_key",
]
