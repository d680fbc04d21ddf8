"""Check that a deployment file names the consortium's contracts, from the chain alone.

A deployment file is a claim: its addresses could name a rogue RoundLedger wired to a registry
of Sybil members. The audit therefore reads the wiring from the contracts themselves and
compares the deployed code with the code compiled from ``contracts/*.sol`` by the real compiler:

- the code at each address is the compiled runtime code with its immutables masked, and each
  immutable holds one value wherever the code uses it (a patched copy of one use, e.g. a
  second registry address behind ``onlyActiveMember``, would otherwise pass the mask);
- given that, the getters are the compiled getters, so they report the immutables and the
  storage the code runs on: ``RoundLedger.registry()`` and ``credit()`` must be the file's
  HospitalRegistry and ContributionCredit, ``ContributionCredit.minter()`` its RoundLedger,
  ``RoundBeacon.ledger()`` and ``registry()`` its RoundLedger and HospitalRegistry,
  and ``admin()`` of the registry and the token its admin.

What it cannot prove: that the file's addresses are the consortium's and not a whole second,
self-consistent deployment. A member's signed attestation names the RoundLedger it voted on
(:mod:`ledger.anchors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

from .deploy import Deployment

__all__ = ["code_matches", "check_wiring"]

Check = Callable[..., None]

#: (contract, getter, the deployment entry it must name) for the core contracts.
_WIRES = (
    ("RoundLedger", "registry", "HospitalRegistry"),
    ("RoundLedger", "credit", "ContributionCredit"),
    ("ContributionCredit", "minter", "RoundLedger"),
    ("RoundBeacon", "ledger", "RoundLedger"),
    ("RoundBeacon", "registry", "HospitalRegistry"),
    ("HospitalRegistry", "admin", None),
    ("ContributionCredit", "admin", None),
)


def _masked_code(code: bytes, refs: dict[str, list[dict[str, int]]]) -> bytes:
    out = bytearray(code)
    for spans in refs.values():
        for span in spans:
            out[span["start"] : span["start"] + span["length"]] = b"\x00" * span["length"]
    return bytes(out)


def _without_metadata(code: bytes) -> bytes:
    """Runtime code without solc's CBOR metadata trailer (its length is in the last 2 bytes)."""
    if len(code) < 2:
        return code
    size = int.from_bytes(code[-2:], "big") + 2
    return code[:-size] if size <= len(code) else code


def _split_immutables(code: bytes, refs: dict[str, list[dict[str, int]]]) -> list[str]:
    """The immutables (by AST id) whose uses in ``code`` hold different values."""
    split = []
    for ident, spans in refs.items():
        values = {code[s["start"] : s["start"] + s["length"]] for s in spans}
        if len(values) > 1:
            split.append(ident)
    return split


def code_matches(w3: Web3, address: str, artifact: dict[str, Any]) -> tuple[bool, str]:
    """Whether the code at ``address`` is the compiled runtime code, immutables masked and each
    immutable one value. Code that differs only in the metadata trailer (the sources' comments
    or NatSpec changed since deployment) executes identically and passes, with a note."""
    refs = artifact["immutableReferences"]
    raw = bytes(w3.eth.get_code(Web3.to_checksum_address(address)))
    onchain = _masked_code(raw, refs)
    compiled = _masked_code(bytes.fromhex(artifact["deployedBytecode"][2:]), refs)
    same = onchain == compiled
    if not same and not (onchain and _without_metadata(onchain) == _without_metadata(compiled)):
        return False, " (the code differs from the compiled sources)"
    split = _split_immutables(raw, refs) if len(raw) == len(compiled) else []
    if split:
        return (
            False,
            f" (immutable #{split[0]} holds different values in different places: patched code)",
        )
    return (
        True,
        ""
        if same
        else " (same executable code; metadata differs: comments changed since deployment)",
    )


def _address_view(w3: Web3, address: str, getter: str) -> str | None:
    """``getter()`` of the contract at ``address`` as an address, or None if it fails."""
    data = "0x" + function_signature_to_4byte_selector(f"{getter}()").hex()
    try:
        tx = {"to": Web3.to_checksum_address(address), "data": data}
        raw = bytes(w3.eth.call(tx))  # type: ignore[arg-type]
    except Exception:  # a revert or no such function: reported as a mismatch
        return None
    return Web3.to_checksum_address(raw[12:32]) if len(raw) >= 32 else None


def check_wiring(w3: Web3, deployment: Deployment, check: Check) -> None:
    """Check that the core contracts point at each other and at the admin as the file says,
    reading every pointer from the chain (the code was checked by :func:`code_matches`)."""
    for contract, getter, target in _WIRES:
        address = deployment.addresses.get(contract)
        if address is None:
            check(
                f"the deployment names a {contract}",
                False,
                "missing from the deployment file",
                kind="integrity",
            )
            continue
        expected = deployment.admin if target is None else deployment.addresses.get(target)
        found = _address_view(w3, address, getter)
        what = "the deployment's admin" if target is None else f"the deployment's {target}"
        check(
            f"{contract}.{getter}() is {what}",
            found is not None
            and expected is not None
            and found == Web3.to_checksum_address(expected),
            f"chain says {found}, deployment file says {expected}",
            kind="integrity",
        )
