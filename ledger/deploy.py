"""Deploy the three medmesh contracts and wire the credit minter; describe where they live."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from .compile import compile_contracts, error_decoder
from .errors import ErrorDecoder, LedgerError
from .records import CREDIT_SCHEMES
from .tx import send

__all__ = ["DEFAULT_BOND", "EMBEDDED_RPC", "Deployment", "deploy", "provider_label"]

#: The registry's default stake bond: 0.01 ether.
DEFAULT_BOND = 10**16

#: The ``rpc`` of a deployment on the embedded in-process chain.
EMBEDDED_RPC = "embedded"


@dataclass
class Deployment:
    """Where the contracts live. ``addresses`` maps contract name to checksum address;
    ``start_block`` is the block of the first deployment transaction (log scans start there);
    ``genesis`` the chain's block 0 hash at deploy time (an anchor: :mod:`ledger.anchors`)."""

    chain_id: int
    rpc: str
    addresses: dict[str, str]
    admin: str
    start_block: int = 0
    genesis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        try:
            return cls(
                chain_id=int(data["chain_id"]),
                rpc=str(data["rpc"]),
                addresses={
                    str(k): Web3.to_checksum_address(v) for k, v in data["addresses"].items()
                },
                admin=Web3.to_checksum_address(data["admin"]),
                start_block=int(data.get("start_block", 0)),
                genesis=_genesis_field(data.get("genesis")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"not a medmesh deployment: {exc!r}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the deployment as JSON, atomically."""
        _atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Deployment:
        return cls.from_dict(_read_json(Path(path), "deployment file"))


def _genesis_field(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if (
        len(text) != 66
        or not text.startswith("0x")
        or any(c not in "0123456789abcdef" for c in text[2:])
    ):
        raise ValueError(f"genesis must be a 0x-prefixed 32-byte hash, got {value!r}")
    return text


def _read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, or raise LedgerError naming ``what`` and the problem in one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LedgerError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise LedgerError(f"{what} {path} is not JSON: {exc}") from exc


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def provider_label(w3: Web3) -> str:
    """``"embedded"`` for the in-process chain, else the provider's endpoint URI."""
    uri = getattr(w3.provider, "endpoint_uri", None)
    return str(uri) if uri else EMBEDDED_RPC


def _deploy_one(
    w3: Web3,
    admin: LocalAccount,
    name: str,
    artifacts: dict[str, Any],
    decoder: ErrorDecoder,
    *args: Any,
) -> ChecksumAddress:
    art = artifacts[name]
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    data = factory.constructor(*args).data_in_transaction
    receipt = send(w3, admin, {"data": data}, decoder=decoder, action=f"deploy {name}")
    address = receipt.get("contractAddress")
    if not address:
        raise LedgerError(f"deploy {name}: receipt carries no contract address")
    return Web3.to_checksum_address(address)


def deploy(
    w3: Web3,
    admin: LocalAccount,
    *,
    commit_window: int = 3600,
    attest_window: int = 3600,
    credit_per_round: int = 100 * 10**18,
    quorum: tuple[int, int] = (2, 3),
    genesis_seats: int = 4,
    member_quorum: tuple[int, int] = (2, 3),
    bond: int = DEFAULT_BOND,
    exit_cooldown: int = 7 * 24 * 3600,
    forfeit_on_revoke: bool = True,
    credit_scheme: str = "samples",
    slash_per_rejection: int = 0,
    reveal_window: int | None = None,
) -> Deployment:
    """Deploy HospitalRegistry, ContributionCredit, RoundLedger and RoundBeacon from ``admin``
    (who becomes the consortium admin) and make the RoundLedger the credit's minter.

    Round ledger: ``quorum`` is the attestation quorum (a pair needs more than that fraction of
    the active members); ``credit_scheme`` ``"samples"`` or ``"equal"`` splits
    ``credit_per_round``; ``slash_per_rejection`` > 0 burns that many credits from each
    committer a finalized round left out. Registry: the admin admits the first
    ``genesis_seats`` members alone; later admissions need endorsements from more than
    ``member_quorum`` (at least 2/3) of the active members, as do suspensions and revocations
    (the target counted); every member
    holds a ``bond`` (wei), refundable ``exit_cooldown`` seconds after it leaves, forfeited on
    revocation if ``forfeit_on_revoke``. Beacon: members reveal their secrets within
    ``reveal_window`` seconds of a round's opening (default: a quarter of the commit window);
    the RoundLedger is bound to it, so that its values can draw each round's committee
    (:func:`ledger.committee.set_committee_size`; by default every member attests)."""
    if credit_scheme not in CREDIT_SCHEMES:
        raise LedgerError(
            f"credit_scheme must be one of {', '.join(CREDIT_SCHEMES)}, got {credit_scheme!r}"
        )
    artifacts = compile_contracts()
    decoder = error_decoder(artifacts)
    start_block = w3.eth.block_number + 1
    registry_config = (
        int(genesis_seats),
        int(member_quorum[0]),
        int(member_quorum[1]),
        int(bond),
        int(exit_cooldown),
        bool(forfeit_on_revoke),
    )
    registry = _deploy_one(
        w3, admin, "HospitalRegistry", artifacts, decoder, admin.address, registry_config
    )
    credit = _deploy_one(w3, admin, "ContributionCredit", artifacts, decoder, admin.address)
    ledger_config = (
        int(commit_window),
        int(attest_window),
        int(credit_per_round),
        int(quorum[0]),
        int(quorum[1]),
        CREDIT_SCHEMES.index(credit_scheme),
        int(slash_per_rejection),
    )
    ledger = _deploy_one(
        w3, admin, "RoundLedger", artifacts, decoder, registry, credit, ledger_config
    )
    token = w3.eth.contract(
        address=Web3.to_checksum_address(credit), abi=artifacts["ContributionCredit"]["abi"]
    )
    send(w3, admin, token.functions.setMinter(ledger), decoder=decoder, action="setMinter")
    window = max(1, int(commit_window) // 4) if reveal_window is None else int(reveal_window)
    beacon = _deploy_one(w3, admin, "RoundBeacon", artifacts, decoder, registry, ledger, window)
    round_ledger = w3.eth.contract(
        address=Web3.to_checksum_address(ledger), abi=artifacts["RoundLedger"]["abi"]
    )
    send(
        w3,
        admin,
        round_ledger.functions.bindBeacon(beacon),
        decoder=decoder,
        action="bindBeacon",
    )
    return Deployment(
        chain_id=w3.eth.chain_id,
        rpc=provider_label(w3),
        addresses={
            "HospitalRegistry": registry,
            "ContributionCredit": credit,
            "RoundLedger": ledger,
            "RoundBeacon": beacon,
        },
        admin=admin.address,
        start_block=start_block,
        genesis="0x" + bytes(w3.eth.get_block(0)["hash"]).hex(),
    )
