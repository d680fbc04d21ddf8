"""How the node process stops or fails: its two exceptions, and the test that tells a chain
RPC outage (retried, :class:`~node.service.campaign.Campaign`) from every other failure.

:class:`NodeStopped` is a stop on purpose (revoked, campaign done, chain reset) and carries the
exit status; :class:`RunnerError` is a node that cannot start or go on, in one line.
"""

from __future__ import annotations

from node.errors import MedmeshError

__all__ = ["NodeStopped", "RunnerError", "chain_unreachable"]


def chain_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed connection to the RPC."""
    import requests

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                ConnectionError,
                TimeoutError,
            ),
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class RunnerError(MedmeshError, RuntimeError):
    """The node cannot start or go on; one line saying why."""


class NodeStopped(MedmeshError):
    """The node stops on purpose (revoked, exited the consortium); ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
