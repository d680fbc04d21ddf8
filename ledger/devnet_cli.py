"""``medmesh devnet``: start anvil, deploy the contracts (optionally with a committee size),
write the deployment file and the admin key (0600), print the addresses, and run until Ctrl-C
or SIGTERM, which stop anvil and free its port."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .chain import connect, dev_account
from .client import LedgerClient
from .committee import set_committee_size
from .deploy import deploy
from .devnet import Anvil
from .errors import LedgerError

__all__ = ["DEVNET_WINDOW_S", "run_devnet"]

#: Default commit and attestation windows of a devnet: rounds here take seconds to minutes, and a
#: round that cannot finalize is failed (and the campaign goes on) after both windows.
DEVNET_WINDOW_S = 120


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # leave the ``with Anvil`` block: anvil is stopped, its port freed


def run_devnet(args: argparse.Namespace) -> int:
    for key in ("commit_window", "attest_window"):
        if getattr(args, key) < 1:
            print(
                f"medmesh devnet: --{key.replace('_', '-')} must be >= 1 s, got {getattr(args, key)}",
                file=sys.stderr,
            )
            return 2
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C stops the devnet even when it was started with SIGINT ignored: a shell's background
    # job, a pytest-xdist worker or a service manager hands that down, and Python then never
    # raises KeyboardInterrupt (found when `make test` ran in a background job)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Anvil(args.port, block_time=args.block_time or None) as rpc:
            w3 = connect(rpc)
            admin = dev_account(w3)
            deployment = deploy(
                w3, admin, commit_window=args.commit_window, attest_window=args.attest_window
            )
            if args.committee:
                set_committee_size(LedgerClient(w3, deployment, admin), args.committee)
            deployment.save(args.out)
            key_path = args.admin_key_out or Path(args.out).parent / "admin.key"
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(admin.key.hex() + "\n")
            os.chmod(key_path, 0o600)
            print(f"commit window {args.commit_window} s, attest window {args.attest_window} s")
            print(
                f"admin key written to {key_path} (0600): the consortium admin admits the genesis members "
                f"with it (`medmesh node register --admin-key-file {key_path}`); keep it off the hospitals' machines"
            )
            print(f"anvil devnet at {rpc} (chain id {deployment.chain_id})")
            for name, address in deployment.addresses.items():
                print(f"  {name:<20} {address}")
            print(f"  admin                {deployment.admin}")
            print(f"  genesis              {deployment.genesis}")
            print(f"deployment written to {args.out}; Ctrl-C stops the devnet", flush=True)
            threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        print("devnet stopped", flush=True)
        return 0
    except LedgerError as exc:
        print(f"medmesh devnet: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    return 0
