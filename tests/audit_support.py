"""Helpers shared by the audit's forgery tests: run ``medmesh audit`` in this process, and
write honest or forged rounds to a chain (fixtures live in conftest.py)."""

from __future__ import annotations

import argparse

import pytest
from ledger_support import LedgerSetup, h32

from ledger.cli import register_commands


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``medmesh audit ARGV`` in this process: (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="medmesh")
    register_commands(parser.add_subparsers())
    args = parser.parse_args(["audit", *argv])
    capsys.readouterr()
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_round(s: LedgerSetup, aggregate: bytes, updates: str = "update") -> int:
    """One round: every hospital commits an update labelled ``updates``, the first three
    attest ``aggregate`` over every committer, the third finalizes."""
    a = s.hospitals[0]
    rnd = a.open_round()
    for i, h in enumerate(s.hospitals):
        h.commit_update(rnd, h32(f"{updates}-{rnd}-{i}"), 100 + i, 0.5 * rnd, 0)
    accepted = [h.address for h in s.hospitals]
    voters = s.hospitals[:3]
    for h in voters:
        h.attest(rnd, aggregate, accepted)
    voters[-1].finalize(rnd)
    return rnd


def honest_rounds(s: LedgerSetup, n: int) -> None:
    """``n`` honest rounds, each finalized on its own aggregate."""
    for i in range(n):
        one_round(s, h32(f"aggregate-{i}"))
