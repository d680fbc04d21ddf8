"""What each protection mode costs: bytes on the wire and round time, per model size and peer count.

For every (parameters, peers) pair one consortium is set up (embedded chain, one libp2p host per
peer in this process, contracts, registration), then the same peers run rounds under each mode in
turn: plaintext FedAvg (the baseline: updates sent unencrypted and unsigned), sealed, sealed with
top-10% sparsification, secagg, secagg with top-10% (round-shared coordinates), and ckks.
Updates are synthetic (normal, sd 0.01; training is not what is measured), the model a logistic
regression with exactly that many parameters. Each round is the real pipeline: commit on chain,
blobs over libp2p, verify, aggregate, attest, finalize.

Reported per mode:
- ``update_ratio``: the committed blob of one peer / the raw float32 update (4 bytes a parameter);
- ``sent_ratio``: everything one peer sent in the round (its blob to each recipient, plus the
  mode's side messages) / the raw float32 update;
- ``compute``: seconds of one peer's own protection arithmetic per round (encode, seal, open;
  mask, unmask; encrypt, add, decrypt), timed alone on one thread without network or chain;
- ``time_ratio``: median round time / plaintext FedAvg's median round time in the same consortium
  (rounds interleave the modes, so load changes hit every mode alike);
- ``loop_seconds``: where a round's time went, summed over the peers (median over rounds):
  ``protect`` (encode + seal / mask / encrypt), ``open`` (verify + decrypt + decode each received
  blob), ``hash`` (checking each blob against its on-chain hash), ``aggregate``, ``chain`` (every
  contract call and transaction), and ``network_and_waits``: the round's wall time less the
  phases run on the event loop, i.e. libp2p, the blob transfers and waiting. Async stages count
  wall time. Where the mode opens blobs in worker threads (``opens_off_loop``: sealed and plain),
  ``open`` and ``hash`` are those threads' wall time, overlapping the loop, and are not
  subtracted.

    .venv/bin/python scripts/bench_protection.py            # 100k and 1M parameters, 4, 8, 16 peers, 3 rounds per mode
    .venv/bin/python scripts/bench_protection.py --quick    # 10k parameters, 4 peers, 1 round each
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gossip import PeerHost  # noqa: E402
from ledger import LedgerClient, connect, deploy, dev_account, fund  # noqa: E402
from node.consensus.compression import CompressionConfig, UpdateCodec  # noqa: E402
from node.consensus.update import ModelUpdate, UpdateFormatError, decode_update, encode_update  # noqa: E402
from node.crypto.ckks import pool as ckks_pool  # noqa: E402
from node.crypto.sealing import SealContext  # noqa: E402
from node.data.samples import TabularData  # noqa: E402
from node.learning.models import build_model, flat_parameters  # noqa: E402
from node.learning.privacy import DPConfig, PrivacyLedger  # noqa: E402
from node.monitoring.stagetimes import StageTotals  # noqa: E402
from node.peer.identity import NodeIdentity  # noqa: E402
from node.peer.mods import PeerMod  # noqa: E402
from node.peer.pipeline import HospitalPeer, PeerSettings  # noqa: E402
from node.protection import Rejected, make_mode  # noqa: E402
from node.protection.ckks_robust import RobustCkksMode  # noqa: E402
from node.protection.sealed_mode import SealedMode  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402
from node.sim.demo import enroll  # noqa: E402

PHASES = {
    "protect": "protect",
    "open": "open",
    "check": "hash",
    "aggregate": "aggregate",
    "chain.send": "chain",
    "chain.call": "chain",
}  # stage (node.monitoring.stagetimes) -> phase
MODES = [
    ("plain", None),
    ("sealed", None),
    ("sealed", 0.1),
    ("secagg", None),
    ("secagg", 0.1),
    ("ckks", None),
]
# on request (--modes) only: Multi-Krum (f = 1) in the clear under sealed, and over encrypted inner products
# under ckks (node.protection.ckks_robust); every other mode runs FedAvg
# (ckks-mk-pool: the same, its Gram matrix on the CKKS worker processes instead of one thread)
ROBUST = {"sealed-mk": "sealed", "ckks-mk": "ckks", "ckks-mk-pool": "ckks"}


class PlainMode(SealedMode):
    """The baseline: the raw update, neither encrypted nor signed (bench only)."""

    name, code = "plain", 0

    async def protect(self, update: ModelUpdate) -> bytes:
        self._sent = update
        return encode_update(update)

    def peek(self, blob: bytes) -> SealContext:
        """A plain update has no envelope: its round and sender come from the update itself."""
        try:
            update = decode_update(blob)
        except UpdateFormatError as exc:
            raise Rejected("bad-format", str(exc)) from None
        return SealContext(0, "", update.round, update.sender.lower())

    def open(self, round_, sender, blob, commitment, member) -> ModelUpdate:
        try:
            update = decode_update(blob, expected_values=self.ctx.global_params.size)
        except UpdateFormatError as exc:
            raise Rejected("bad-format", str(exc)) from None
        if (update.round, update.sender, update.samples) != (round_, sender, commitment.samples):
            raise Rejected("bad-format", "update metadata differs from the on-chain commitment")
        return update


class SyntheticUpdates(PeerMod):
    """Draws a synthetic update instead of training, and notes the size of each blob."""

    def __init__(self, peer: BenchPeer) -> None:
        self.rng = np.random.default_rng(abs(hash(peer.address)) % 2**32)
        self.blob_sizes = peer.blob_sizes

    async def train(self, peer, round_, call_next) -> ModelUpdate:
        delta = self.rng.normal(0, 0.01, peer.size).astype(np.float32)
        return ModelUpdate(round_, peer.address, 100 + len(peer.name), 0.0, delta)

    async def protect(self, peer, update, call_next) -> bytes:
        blob = await call_next(update)
        self.blob_sizes.append(len(blob))
        return blob


class BenchPeer(HospitalPeer):
    """A peer with a ``size``-parameter model whose "training" draws a synthetic update."""

    size = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.model = build_model("logreg", input_shape=(self.size - 1,), seed=0)
        self.global_params = flat_parameters(self.model)
        self.data = self.raw_data
        self.blob_sizes: list[int] = []
        self.phases = StageTotals(exclusive=True, names=tuple(PHASES))
        self.clock.subscribe(self.phases)
        self.mods.add(SyntheticUpdates(self))

    def use(self, protection: str, topk: float | None) -> None:
        compression = CompressionConfig(topk=topk) if topk else None
        mode = ROBUST.get(protection, "sealed" if protection == "plain" else protection)
        self.settings = replace(
            self.settings,
            protection=mode,
            compression=compression,
            rule="multi-krum" if protection in ROBUST else "fedavg",
        )
        self.codec = UpdateCodec(compression, self.size)
        self.protection = (
            PlainMode(self.mode_context())
            if protection == "plain"
            else make_mode(self.mode_context())
        )
        if isinstance(self.protection, RobustCkksMode):
            self.protection.gram_in_workers = protection == "ckks-mk-pool"

    def phase_seconds(self) -> dict[str, float]:
        """Seconds per phase since the last call (see ``loop_seconds`` in the module docstring)."""
        out = dict.fromkeys(dict.fromkeys(PHASES.values()), 0.0)
        for name, secs in self.phases.reset().items():
            out[PHASES[name]] += secs
        return out


async def measure(size: int, peers: int, rounds: int, timeout: float) -> list[dict]:
    w3 = connect()
    admin = dev_account(w3)
    deployment = deploy(w3, admin, commit_window=900, attest_window=900)
    admin_client = LedgerClient(w3, deployment, admin)
    settings = PeerSettings(rule="fedavg", round_timeout=timeout)
    data = TabularData(
        np.zeros((2, size - 1), dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    )
    state = Path(tempfile.mkdtemp(prefix="bench-protection-"))
    cls = type("Peer", (BenchPeer,), {"size": size})
    members: list[tuple[BenchPeer, PeerHost, LedgerClient]] = []
    for i in range(peers):
        identity = NodeIdentity.generate(f"h{i:02d}")
        fund(w3, identity.address, 10**18)
        holder: list[BenchPeer] = []
        host = PeerHost(
            identity.libp2p_seed, authorize=lambda pid, h=holder: bool(h) and h[0].authorize(pid)
        )
        client = enroll(w3, admin_client, identity, host.peer_id, [m[2] for m in members], 1000)
        no_dp = DPConfig(
            enabled=False, steps_per_epoch=4, local_epochs=3
        )  # the schedule its figures were taken with
        privacy = PrivacyLedger(no_dp, state / f"{i}.json", warn_if_off=False)
        peer = cls(identity, data, client, host, privacy, settings)
        holder.append(peer)
        members.append((peer, host, client))
    for peer, _, _ in members:
        peer.refresh_directory()
    rows = []
    async with AsyncExitStack() as stack:
        for _, host, _ in members:
            await stack.enter_async_context(host.running())
        for i, (_, host, _) in enumerate(members):
            for _, other, _ in members[:i]:
                await host.connect(other.listen_addrs[0])
        nursery = await stack.enter_async_context(trio.open_nursery())
        for peer, _, _ in members:
            await nursery.start(peer.serve)
        if any(m.startswith("ckks") for m, _ in MODES):
            ckks_pool.warm_up()  # start-up, not per round: a node starts its CKKS workers once
        # rounds interleave the modes (plain, sealed, ..., plain, sealed, ...), so a change in the
        # machine's load hits every mode alike; the median round time is reported
        samples: dict[tuple[str, float | None], dict[str, list]] = {
            m: {"times": [], "sent": [], "blobs": [], "ok": [], "phases": []} for m in MODES
        }
        for i in range(rounds * len(MODES)):
            mode = MODES[i % len(MODES)]
            for peer, _, _ in members:
                peer.use(*mode)
                peer.join_beacon()  # ckks draws from the beacon: a secret for the round about to open
            s = samples[mode]
            before = [h.stats.blob_bytes_sent for _, h, _ in members]
            for peer, _, _ in members:
                peer.blob_sizes.clear()
                peer.phase_seconds()
            started = time.perf_counter()
            round_ = await members[i % peers][0].open_round()
            outcomes = {}

            async def run(p: BenchPeer) -> None:
                outcomes[p.address] = await p.run_round(round_)  # noqa: B023 (awaited in this iteration)

            async with trio.open_nursery() as rn:
                for peer, _, _ in members:
                    rn.start_soon(run, peer)
            s["times"].append(time.perf_counter() - started)
            per_peer = [p.phase_seconds() for p, _, _ in members]
            phases = {k: sum(x[k] for x in per_peer) for k in per_peer[0]}
            off_loop = ("open", "hash") if members[0][0].protection.opens_off_loop else ()
            phases["network_and_waits"] = max(
                s["times"][-1] - sum(v for k, v in phases.items() if k not in off_loop), 0.0
            )
            s["phases"].append(phases)
            s["sent"].append(
                statistics.mean(
                    h.stats.blob_bytes_sent - b
                    for (_, h, _), b in zip(members, before, strict=False)
                )
            )
            s["blobs"].append(statistics.mean(x for p, _, _ in members for x in p.blob_sizes))
            s["ok"].append(
                all(o.finalized for o in outcomes.values())
                and len({o.aggregate_hash for o in outcomes.values()}) == 1
            )
            print(
                f"  {size:>8} params {peers:>2} peers {mode[0]:>6}{' top10%' if mode[1] else '       '}: "
                f"{s['times'][-1]:7.2f} s, update {s['blobs'][-1] / (4 * size):.3f}x, "
                f"sent {s['sent'][-1] / (4 * size):.2f}x, ok={s['ok'][-1]}; loop s: "
                + " ".join(f"{k} {v:.2f}" for k, v in phases.items()),
                flush=True,
            )
        for (protection, topk), s in samples.items():
            rows.append(
                {
                    "parameters": size,
                    "peers": peers,
                    "mode": protection,
                    "topk": topk,
                    "round_seconds": [round(t, 3) for t in s["times"]],
                    "median_seconds": statistics.median(s["times"]),
                    "update_bytes": statistics.mean(s["blobs"]),
                    "sent_bytes_per_peer": statistics.mean(s["sent"]),
                    "update_ratio": statistics.mean(s["blobs"]) / (4 * size),
                    "sent_ratio": statistics.mean(s["sent"]) / (4 * size),
                    "all_finalized_and_agree": all(s["ok"]),
                    "loop_seconds": {
                        k: round(statistics.median(p[k] for p in s["phases"]), 3)
                        for k in s["phases"][0]
                    },
                }
            )
        nursery.cancel_scope.cancel()
    base = next(r["median_seconds"] for r in rows if r["mode"] == "plain")
    for r in rows:
        r["time_ratio"] = r["median_seconds"] / base
    return rows


def _clock(fn, *args, repeat: int = 3):
    """(median seconds, result) of ``fn(*args)`` over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def compute_costs(size: int, peers: int) -> dict[str, float]:
    """Seconds of one peer's own protection arithmetic per round, no network and no chain
    (single thread; robust to the load that makes whole-round times noisy)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from node.crypto.ckks.scheme import CKKSKeyHolder
    from node.crypto.sealing import Recipient, SealContext, open_sealed, seal
    from node.crypto.secagg.masking import (
        MaskSecrets,
        RingParams,
        encode_fixed,
        mask_input,
        unmask_sum,
    )

    rng = np.random.default_rng(0)
    update = ModelUpdate(1, "0x" + "a" * 40, 100, 0.0, rng.normal(0, 0.01, size).astype(np.float32))
    others = ["0x" + f"{i:040x}" for i in range(1, peers)]
    # plain and sealed: encode (+ seal) once, open (+ decode) every other peer's blob
    t_enc, plaintext = _clock(encode_update, update)
    t_dec, _ = _clock(decode_update, plaintext)
    sign, keys = Ed25519PrivateKey.generate(), {a: X25519PrivateKey.generate() for a in others}
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = lambda k: k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)  # noqa: E731
    ctx = SealContext(1, "0x" + "1" * 40, 1, update.sender)
    t_seal, blob = _clock(
        seal, plaintext, ctx, sign, [Recipient(a, raw(k)) for a, k in keys.items()]
    )
    t_open, _ = _clock(
        lambda: open_sealed(
            blob, ctx, sender_sign_key=raw(sign), my_address=others[0], my_seal_key=keys[others[0]]
        )
    )
    # secagg: encode and mask once; unmask the sum of every peer's input
    params, parts = RingParams(), ["0x" + f"{i:040x}" for i in range(peers)]
    secrets = {p: MaskSecrets.generate() for p in parts}
    pubs = {p: s.mask_public() for p, s in secrets.items()}
    x = np.append(update.samples * update.delta.astype(np.float64), float(update.samples))
    t_fix, ring = _clock(encode_fixed, x, params, peers)
    t_mask, _ = _clock(mask_input, ring, parts[0], secrets[parts[0]], pubs, b"ctx", params)
    masked = {p: mask_input(ring, p, secrets[p], pubs, b"ctx", params) for p in parts}
    t_unmask, _ = _clock(
        unmask_sum, masked, pubs, {p: s.self_seed for p, s in secrets.items()}, {}, b"ctx", params
    )
    # ckks: every peer but the key holder encrypts; the aggregator adds those n - 1; the key holder
    # decrypts once and adds its own update in the clear
    holder = CKKSKeyHolder()
    t_encrypt, ct = _clock(holder.public.encrypt_weighted, update.delta, float(update.samples), 1)
    t_sum, total = _clock(holder.public.sum, [ct] * (peers - 1), 1)
    own = (update.delta, float(update.samples))
    t_decrypt, _ = _clock(lambda: holder.decrypt_weighted_mean(total, 1, own=own))
    return {
        "plain": t_enc + (peers - 1) * t_dec,
        "sealed": t_enc + t_seal + (peers - 1) * (t_open + t_dec),
        "secagg": t_fix + t_mask + t_unmask,
        "ckks_peer": t_encrypt,
        "ckks_aggregator": t_encrypt + t_sum,
        "ckks_key_holder": t_decrypt,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="10k parameters, 4 peers, 1 round per mode"
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--peers", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--rounds", type=int, default=3, help="rounds per mode (median reported)")
    ap.add_argument("--timeout", type=float, default=300.0, help="round timeout in seconds")
    ap.add_argument(
        "--modes",
        nargs="+",
        help="a subset, e.g. plain sealed sealed-top10 secagg secagg-top10 ckks, "
        "or sealed-mk / ckks-mk / ckks-mk-pool (Multi-Krum) (plain, the baseline, is always run "
        "first)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_protection.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.peers, args.rounds = [10_000], [4], 1
        if args.out == ap.get_default("out"):
            args.out = Path("benchmarks/results/bench_protection_quick.json")
    if args.modes:
        names = {f"{m}{'-top10' if k else ''}": (m, k) for m, k in MODES} | {
            m: (m, None) for m in ROBUST
        }
        unknown = set(args.modes) - set(names)
        if unknown:
            ap.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(names)}")
        MODES[:] = [names["plain"]] + [names[m] for m in args.modes if m != "plain"]
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("libp2p", "multiaddr", "async_service", "web3", "eth", "medmesh"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    results, compute = [], []
    started = time.perf_counter()
    for size in args.sizes:
        for peers in args.peers:
            results += trio.run(measure, size, peers, args.rounds, args.timeout)
            compute.append(
                {"parameters": size, "peers": peers, "seconds": compute_costs(size, peers)}
            )
            print(
                f"  compute per peer per round: { {k: round(v, 3) for k, v in compute[-1]['seconds'].items()} }"
            )
            atomic_write_json(
                args.out,
                {  # after each consortium: a cut-short run keeps what it measured
                    "command": " ".join(
                        [
                            "scripts/bench_protection.py",
                            *(argv if argv is not None else sys.argv[1:]),
                        ]
                    ),
                    "machine": {
                        "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "load_average": os.getloadavg(),
                    },
                    "seconds": round(time.perf_counter() - started, 1),
                    "results": results,
                    "compute": compute,
                },
            )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
