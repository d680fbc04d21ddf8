"""Compile ``contracts/*.sol`` with the real Solidity compiler (py-solc-x driving ``scripts/solc``).

The result is cached in ``build/contracts/<sha256>.json``, keyed by the sources, the compiler
version and the settings, so a change to any of them recompiles. Nothing here is hand-written
bytecode or ABI.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ErrorDecoder, LedgerError
from .records import ENUM_LABELS

__all__ = [
    "CONTRACT_NAMES",
    "EVM_VERSION",
    "REPO_ROOT",
    "SOLC_SETTINGS",
    "compile_contracts",
    "error_decoder",
    "solc_version",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
SOLC_SHIM = REPO_ROOT / "scripts" / "solc"
CACHE_DIR = REPO_ROOT / "build" / "contracts"

#: The newest hardfork both chains run: py-evm 0.12 (eth-tester) stops at Prague; anvil 1.7
#: runs Prague and later. solc 0.8.37 defaults to a newer one (Osaka), hence the pin.
EVM_VERSION = "prague"
#: The deployable contracts, in deployment order.
CONTRACT_NAMES = ("HospitalRegistry", "ContributionCredit", "RoundLedger", "RoundBeacon")

SOLC_SETTINGS: dict[str, Any] = {
    "evmVersion": EVM_VERSION,
    "optimizer": {"enabled": True, "runs": 200},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
            ]
        }
    },
}


def _sources() -> dict[str, str]:
    files = sorted(CONTRACTS_DIR.glob("*.sol"))
    if not files:
        raise LedgerError(f"no Solidity sources in {CONTRACTS_DIR}")
    return {f"contracts/{p.name}": p.read_text(encoding="utf-8") for p in files}


def solc_version() -> str:
    if not os.access(SOLC_SHIM, os.X_OK):
        raise LedgerError(f"Solidity compiler shim {SOLC_SHIM} is missing or not executable")
    import solcx.wrapper

    try:
        return str(solcx.wrapper.get_solc_version(SOLC_SHIM))
    except Exception as exc:  # node or node_modules/solc missing
        raise LedgerError(f"cannot run {SOLC_SHIM} ({exc}); run `make setup`") from exc


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile the contracts (or read the cache) and return, per deployable contract,
    ``{"abi": [...], "bytecode": "0x...", "deployedBytecode": "0x...", "immutableReferences": {...}}``."""
    sources = _sources()
    return _compile_cached(json.dumps(sources, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _compile_cached(sources_json: str) -> dict[str, dict[str, Any]]:
    sources: dict[str, str] = json.loads(sources_json)
    version = solc_version()
    key_material = json.dumps(
        {"sources": sources, "solc": version, "settings": SOLC_SETTINGS}, sort_keys=True
    )
    digest = hashlib.sha256(key_material.encode()).hexdigest()
    cache_file = CACHE_DIR / f"{digest}.json"
    if cache_file.exists():
        try:
            return json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # a torn or foreign file: recompile over it
    result = _run_solc(sources)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, cache_file)
    return result


def _run_solc(sources: dict[str, str]) -> dict[str, dict[str, Any]]:
    import solcx

    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SOLC_SETTINGS,
    }
    try:
        output = solcx.compile_standard(
            standard_input, solc_binary=str(SOLC_SHIM), allow_empty=True
        )
    except Exception as exc:  # solcx raises SolcError with the compiler's messages
        message = getattr(exc, "stderr_data", "") or getattr(exc, "message", "") or str(exc)
        raise LedgerError(
            f"Solidity compilation failed: {str(message).strip().splitlines()[0]}"
        ) from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        first = (
            errors[0].get("formattedMessage", errors[0].get("message", "?")).strip().splitlines()
        )
        raise LedgerError(
            f"Solidity compilation failed ({len(errors)} errors): {' '.join(first[:2])}"
        )
    found: dict[str, dict[str, Any]] = {}
    for unit in output.get("contracts", {}).values():
        for name, data in unit.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode or not data["abi"]:  # interfaces, abstract contracts, and
                continue  # libraries of internal functions (inlined where they are used)
            found[name] = {
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "immutableReferences": data["evm"]["deployedBytecode"].get(
                    "immutableReferences", {}
                ),
            }
    missing = [n for n in CONTRACT_NAMES if n not in found]
    if missing:
        raise LedgerError(f"compiler output lacks contracts {', '.join(missing)}")
    return found


def error_decoder(artifacts: dict[str, dict[str, Any]] | None = None) -> ErrorDecoder:
    """A decoder for every custom error of the compiled contracts (enum values shown by name)."""
    artifacts = artifacts if artifacts is not None else compile_contracts()
    return ErrorDecoder((a["abi"] for a in artifacts.values()), enums=ENUM_LABELS)
