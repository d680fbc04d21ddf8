"""Many ``eth_call`` reads of one view function, decoded without web3's per-call machinery and,
on a node, sent as JSON-RPC batches: the audit cross-checks a long history with thousands of
calls (:mod:`ledger.history_checks`), which then cost a few round trips, not one each."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

from .embedded import is_embedded
from .errors import LedgerError, _abi_type
from .index import fast_decode, is_static_simple

__all__ = ["View", "view_calls"]

BATCH = 1000


class View:
    """A view function encoded without web3's per-call machinery (a long history makes
    thousands of calls): selector + ``eth_abi`` arguments, outputs decoded with ``eth_abi``."""

    def __init__(self, contract: Any, name: str) -> None:
        (item,) = [i for i in contract.abi if i.get("type") == "function" and i["name"] == name]
        self.address = contract.address
        self.inputs = [_abi_type(i) for i in item["inputs"]]
        self.outputs = [_abi_type(o) for o in item["outputs"]]
        self.selector = function_signature_to_4byte_selector(f"{name}({','.join(self.inputs)})")

    def data(self, *args: Any) -> str:
        return "0x" + (self.selector + abi_encode(self.inputs, list(args))).hex()


def view_calls(w3: Web3, view: View, arg_lists: list[tuple[Any, ...]]) -> list[Any]:
    """``view`` called with each argument tuple, decoded; on a node the calls go out as
    JSON-RPC batches, so a long history costs a few round trips, not one per call."""
    datas = [view.data(*args) for args in arg_lists]
    raws: list[bytes] = []
    if is_embedded(w3) or not hasattr(w3.provider, "make_batch_request"):
        raws = [bytes(w3.eth.call({"to": view.address, "data": d})) for d in datas]  # type: ignore[typeddict-item]
    else:
        for lo in range(0, len(datas), BATCH):
            answers = w3.provider.make_batch_request(
                [
                    ("eth_call", [{"to": view.address, "data": d}, "latest"])
                    for d in datas[lo : lo + BATCH]
                ]
            )
            if isinstance(answers, dict):  # the node refused the whole batch
                raise LedgerError(f"batched eth_call failed: {answers.get('error')}")
            for answer in sorted(answers, key=lambda r: int(r["id"])):
                if "error" in answer:
                    raise LedgerError(f"eth_call failed: {answer['error']}")
                result = answer["result"]
                raws.append(bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result))
    flat = view.outputs
    if (
        len(flat) == 1
        and flat[0].startswith("(")
        and flat[0].endswith(")")
        and "(" not in flat[0][1:]
    ):
        inner = flat[0][1:-1].split(",")
        if all(is_static_simple(t) for t in inner):  # a struct of static words: decode it fast
            return [(tuple(fast_decode(inner, raw)),) for raw in raws]
    if all(is_static_simple(t) for t in flat):
        return [tuple(fast_decode(flat, raw)) for raw in raws]
    return [abi_decode(view.outputs, raw) for raw in raws]
