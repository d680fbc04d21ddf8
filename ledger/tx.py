"""Locally signed transactions: build, simulate, sign, send raw, wait, decode reverts.

Every state change of the ledger goes through :func:`send`, so the same code path runs on the
embedded eth-tester chain, on anvil and on any JSON-RPC endpoint (no unlocked accounts needed).
A transaction is first simulated (``eth_estimateGas``); a revert there raises before anything
is signed or sent, so a failing call never leaves a half-done transaction behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import TxParams, TxReceipt

from .errors import ContractRevert, ErrorDecoder, LedgerError

__all__ = ["RECEIPT_TIMEOUT_S", "call", "send"]

#: Upper bound on waiting for a receipt (anvil and eth-tester mine at once).
RECEIPT_TIMEOUT_S = 120.0
_PRIORITY_FEE = 10**9  # 1 gwei
_GAS_MARGIN = 1.25
_EMBEDDED_GAS = 10_000_000
#: Attempts at a transaction whose nonce another sender of the same account took first.
NONCE_ATTEMPTS = 4
#: What JSON-RPC nodes (anvil, geth, reth, eth-tester) say when a nonce was already used.
_NONCE_RACE = ("nonce too low", "already known", "replacement transaction underpriced", "nonce")
_account_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _account_lock(address: str) -> threading.Lock:
    """One lock per sending account in this process: two threads never read the same
    pending nonce (another process with the same key is handled by the retry in :func:`send`)."""
    with _locks_guard:
        return _account_locks.setdefault(address.lower(), threading.Lock())


def _revert_data(exc: BaseException) -> str | bytes | None:
    data = getattr(exc, "data", None)
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
        inner = data.get("data")
        if isinstance(inner, (str, bytes)):
            return inner
    return None


def _raise_revert(
    exc: ContractLogicError, decoder: ErrorDecoder | None, action: str
) -> ContractRevert:
    data = _revert_data(exc)
    if decoder is not None and data:
        return decoder.decode(data, action=action)
    return ContractRevert("Error", {"reason": str(exc.message or exc)}, action=action)


def call(
    fn: ContractFunction, *, decoder: ErrorDecoder | None = None, action: str = "", **kwargs: Any
) -> Any:
    """Run a view/pure function; a revert raises :class:`ContractRevert`."""
    try:
        return fn.call(**kwargs)
    except ContractLogicError as exc:
        raise _raise_revert(exc, decoder, action or fn.fn_name) from None
    except (Web3Exception, OSError) as exc:
        raise LedgerError(f"{action or fn.fn_name} failed: {exc}") from exc


def send(
    w3: Web3,
    account: LocalAccount,
    tx: TxParams | ContractFunction,
    *,
    decoder: ErrorDecoder | None = None,
    action: str = "",
    keep_raw: Callable[[bytes], None] | None = None,
) -> TxReceipt:
    """Sign ``tx`` (a contract function call or a plain tx dict) with ``account``, send it raw
    and return the successful receipt. Reverts raise :class:`ContractRevert`. ``keep_raw``
    receives the signed transaction's bytes before it is sent (a member's signed record).

    When the account's nonce was taken by another sender in between (another thread, or
    another process holding the same key: an operator's CLI beside the running node), the
    transaction is prepared again from the new nonce: simulated again first, so a call the
    other transaction made pointless reverts instead of being sent twice."""
    if isinstance(tx, ContractFunction):
        action = action or tx.fn_name
        base: dict[str, Any] = {"to": tx.address, "data": tx._encode_transaction_data()}
    else:
        base = dict(tx)
    action = action or "transaction"
    for attempt in range(NONCE_ATTEMPTS):
        with _account_lock(account.address):
            params = _prepare(w3, account, base, decoder, action)
            signed = account.sign_transaction(params)
            if keep_raw is not None:
                keep_raw(bytes(signed.raw_transaction))
            try:
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            except ContractLogicError as exc:
                raise _raise_revert(exc, decoder, action) from None
            except (Web3RPCError, Web3Exception, OSError, ValueError) as exc:
                if _nonce_race(exc) and attempt + 1 < NONCE_ATTEMPTS:
                    continue
                raise LedgerError(f"{action} was rejected by the node: {exc}") from exc
        break
    try:
        receipt = w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.05
        )
    except TimeExhausted as exc:
        raise LedgerError(f"{action}: no receipt within {RECEIPT_TIMEOUT_S:.0f} s") from exc
    except (Web3RPCError, Web3Exception, OSError, ValueError) as exc:
        raise LedgerError(f"{action}: its receipt could not be read: {exc}") from exc
    if receipt["status"] != 1:
        raise _replay_failure(w3, params, receipt, decoder, action)
    return receipt


def _nonce_race(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _NONCE_RACE)


def _prepare(
    w3: Web3,
    account: LocalAccount,
    base: dict[str, Any],
    decoder: ErrorDecoder | None,
    action: str,
) -> dict[str, Any]:
    """The transaction's nonce, gas and fees, after a simulation that raises on a revert."""
    params = {**base, "from": account.address}
    params.setdefault("value", 0)
    try:
        params["chainId"] = w3.eth.chain_id
        params["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
        if isinstance(w3.provider, EthereumTesterProvider):
            # py-evm estimates gas by a binary search (~13 executions); one simulating call
            # and a fixed, generous limit are enough on the in-process chain.
            w3.eth.call({**params, "gas": _EMBEDDED_GAS})  # type: ignore[typeddict-item]
            params["gas"] = _EMBEDDED_GAS
        else:
            estimate = w3.eth.estimate_gas(params)  # type: ignore[arg-type]
            params["gas"] = int(estimate * _GAS_MARGIN) + 10_000
        latest = w3.eth.get_block("latest")
        if latest.get("baseFeePerGas") is not None:
            params["maxPriorityFeePerGas"] = _PRIORITY_FEE
            params["maxFeePerGas"] = 2 * int(latest["baseFeePerGas"]) + _PRIORITY_FEE
            params["type"] = 2
        else:  # a chain without EIP-1559
            params["gasPrice"] = w3.eth.gas_price
    except ContractLogicError as exc:
        raise _raise_revert(exc, decoder, action) from None
    except (Web3Exception, OSError, ValueError) as exc:
        raise LedgerError(f"{action} could not be prepared: {exc}") from exc
    return params


def _replay_failure(
    w3: Web3, params: dict[str, Any], receipt: TxReceipt, decoder: ErrorDecoder | None, action: str
) -> LedgerError:
    """A transaction that passed simulation but reverted when mined (the state moved in
    between): replay it as a call on the parent block to learn why."""
    replay = {k: params[k] for k in ("from", "to", "data", "value") if k in params}
    try:
        w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        return _raise_revert(exc, decoder, action)
    except Exception:
        pass
    return LedgerError(f"{action} reverted when mined (tx {receipt['transactionHash'].hex()})")
