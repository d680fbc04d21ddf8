"""The ledger's exceptions, and the decoding of contract reverts into one readable line.

Exception tree::

    LedgerError                 every failure of the chain client; str() is one line
     +-- ContractRevert         a contract reverted; carries the decoded custom error
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

__all__ = ["ContractRevert", "ErrorDecoder", "LedgerError"]

_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialized function",
}


class LedgerError(Exception):
    """Root of every error raised by :mod:`ledger`. Its message is one readable line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ContractRevert(LedgerError):
    """A contract call reverted. ``error_name`` is the custom error's name (``"Panic"``,
    ``"Error"`` or ``"UnknownError"`` otherwise) and ``error_args`` its decoded arguments."""

    def __init__(
        self,
        error_name: str,
        error_args: Mapping[str, Any],
        *,
        action: str = "",
        shown: Mapping[str, str] | None = None,
    ) -> None:
        self.error_name = error_name
        self.error_args = dict(error_args)
        self.action = action
        labels = dict(shown or {})
        parts = ", ".join(
            f"{k}={labels[k] if k in labels else _show(v)}" for k, v in self.error_args.items()
        )
        #: ``Name(k=v, ...)``, without the action prefix (enum values shown by name).
        self.signature = f"{error_name}({parts})"
        super().__init__(f"{action} reverted: {self.signature}" if action else self.signature)


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value.startswith("0x") else repr(value)
    return str(value)


def _abi_type(inp: Mapping[str, Any]) -> str:
    typ = str(inp["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in inp["components"])
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def _normalize(typ: str, value: Any) -> Any:
    if typ == "address":
        return to_checksum_address(value)
    if typ.endswith("[]") and isinstance(value, (list, tuple)):
        return [_normalize(typ[:-2], v) for v in value]
    return value


class ErrorDecoder:
    """Maps revert data (selector + ABI-encoded arguments) to a :class:`ContractRevert`,
    using the custom errors declared in the given ABIs."""

    def __init__(
        self,
        abis: Iterable[list[dict[str, Any]]],
        *,
        enums: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._enums = dict(enums or {})
        self._errors: dict[bytes, dict[str, Any]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = ",".join(_abi_type(i) for i in item["inputs"])
                selector = function_signature_to_4byte_selector(f"{item['name']}({types})")
                self._errors[selector] = item

    def decode(self, data: bytes | str | None, *, action: str = "") -> ContractRevert:
        raw = _as_bytes(data)
        if len(raw) < 4:
            return ContractRevert("UnknownError", {"data": raw} if raw else {}, action=action)
        selector, body = raw[:4], raw[4:]
        try:
            if selector == _ERROR_SELECTOR:
                (reason,) = abi_decode(["string"], body)
                return ContractRevert("Error", {"reason": reason}, action=action)
            if selector == _PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], body)
                return ContractRevert(
                    "Panic",
                    {"code": hex(code), "meaning": _PANIC_CODES.get(code, "unknown")},
                    action=action,
                )
            item = self._errors.get(selector)
            if item is None:
                return ContractRevert("UnknownError", {"data": raw}, action=action)
            types = [_abi_type(i) for i in item["inputs"]]
            values = abi_decode(types, body)
        except Exception:  # malformed revert data: show it raw rather than hide it
            return ContractRevert("UnknownError", {"data": raw}, action=action)
        names = [i["name"] or f"arg{n}" for n, i in enumerate(item["inputs"])]
        args = {n: _normalize(t, v) for n, t, v in zip(names, types, values, strict=True)}
        shown = {}
        for name, inp in zip(names, item["inputs"], strict=True):
            labels = self._enums.get(str(inp.get("internalType", "")).removeprefix("enum "))
            if labels is not None and isinstance(args[name], int) and args[name] < len(labels):
                shown[name] = labels[args[name]]
        return ContractRevert(item["name"], args, action=action, shown=shown)


def _as_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    text = data[2:] if data.startswith("0x") else data
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""
