"""Pins the ledger's public API: node/ and the CLI code against exactly these names."""

from __future__ import annotations

import inspect

import ledger


def test_public_names() -> None:
    assert sorted(ledger.__all__) == [
        "Anvil",
        "Attestation",
        "AwardReceipt",
        "Commitment",
        "ContractRevert",
        "DEFAULT_BOND",
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
    assert issubclass(ledger.ContractRevert, ledger.LedgerError)


def test_client_methods() -> None:
    methods = {n for n, _ in inspect.getmembers(ledger.LedgerClient) if not n.startswith("_")}
    assert methods >= {
        "address", "register", "admit", "revoke", "identities", "identity_of_peer", "active_count",
        "open_round", "current_round", "commit_update", "commitments", "attest", "finalize",
        "fail_round", "round_info", "quorum_reached", "credit_balance",
        "endorse", "deposit_bond", "vote_sanction", "suspend", "reinstate", "rotate_keys", "exit",
        "withdraw_bond", "sweep_forfeited", "genesis_open", "endorsements_needed", "record_rejections",
        "dissent_count", "set_transfers_enabled", "registry_config", "ledger_config",
    }  # fmt: skip
    params = inspect.signature(ledger.LedgerClient.commit_update).parameters
    assert list(params) == ["self", "round", "update_hash", "samples", "epsilon", "mode"]
    assert list(inspect.signature(ledger.deploy).parameters) == [
        "w3", "admin", "commit_window", "attest_window", "credit_per_round", "quorum", "genesis_seats",
        "member_quorum", "bond", "exit_cooldown", "forfeit_on_revoke", "credit_scheme", "slash_per_rejection",
        "reveal_window",
    ]  # fmt: skip
    assert list(inspect.signature(ledger.connect).parameters) == ["rpc", "state_file"]
