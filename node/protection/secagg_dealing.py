"""secagg's phases 1 and 2 (Bonawitz et al. 2017, AdvertiseKeys and ShareKeys): who holds the
Shamir shares of a member's secrets, and who is a participant (docs/secagg.md).

Bonawitz et al. have one server; secagg without a committee makes every member play it
(:func:`deal_to_members`): every member advertises its mask key to every other, deals shares
to every advertiser (threshold a strict majority), and the participants are those whose shares
reached it. With a round's aggregation committee of k seats (:mod:`node.peer.committee`, issue
19) the k seats play the server together (:func:`deal_to_seats`):

* every member deals the Shamir shares of its self-mask seed ``b_u`` and mask key ``s_u`` to
  the *seats* only, threshold ``t = floor(2k/3) + 1`` (the round's quorum over the seats,
  :func:`node.protection.secagg_consistency.consistency_threshold`), each sealed to its seat;
  then it advertises its public mask key to every other member, one envelope per recipient.
  The *participants* are this member plus those whose advert reached it;
* every member masks its update against the participants as before and sends the masked
  vector to the seats only (``ModeContext.aggregators``);
* the *survivors* are the committers on chain whose masked input the seat holds, so a member
  that committed and then vanished is a dropped participant like one that never committed;
* only seats sign the consistency statement (t seat signatures), release shares (to the other
  seats) and unmask; followers fetch the finalized aggregate as in sealed mode.

A follower thus sends k masked vectors, k share messages and N - 1 key adverts; it holds no
share of anyone and answers no unmasking request, so a follower that drops out costs only its
own update, and up to ``k - t`` seats may go missing (as many as the quorum tolerates).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from node.crypto.secagg.masking import MaskSecrets, SecAggError, share_secrets
from node.protection import secagg_consistency as consistency
from node.protection import secagg_wire as wire

if TYPE_CHECKING:
    from ledger import Identity
    from node.protection.base import ProtectionMode
    from node.protection.context import ModeContext

__all__ = ["advert_wait", "deal_to_members", "deal_to_seats", "seats_of", "share_threshold"]

#: what a dealing returns: the adverts that came, the participants (this member and the others
#: counted), and this member's own share (x, b, s) of its secrets if it holds shares
Dealt = tuple[dict[str, wire.KeyAdvert], tuple[str, ...], tuple[int, int, int] | None]


def seats_of(ctx: ModeContext, round_: int) -> frozenset[str] | None:
    """The seats (lower-case addresses) of ``round_``'s committee; None without one."""
    return ctx.committee(round_) if ctx.committee is not None else None


def share_threshold(seats: frozenset[str]) -> int:
    """Shares that reconstruct a secret dealt to the seats: the round's quorum over them, so
    any set of seats that can finalize the round can unmask it, and fewer cannot."""
    return consistency.consistency_threshold(len(seats))


async def deal_to_members(
    mode: ProtectionMode, round_: int, secrets: MaskSecrets, threshold: int
) -> Dealt:
    """Phases 1 and 2 among every member: advertise the mask key, deal the shares to every
    advertiser (each sealed to its holder); the participants are those whose shares came."""
    ctx = mode.ctx
    me, timeout, others = ctx.address, ctx.settings.round_timeout, ctx.others()
    advert = wire.encode(wire.KeyAdvert(round_, me, secrets.mask_public()))
    await mode.send_to(round_, "secagg-keys", mode.seal_for(round_, advert, others), others)
    adverts = await mode.mailbox.wait_for("keys", round_, {o.address for o in others}, timeout)
    dealt = sorted([me, *adverts], key=str.lower)
    if len(dealt) < threshold:
        raise SecAggError(
            f"only {len(dealt)} members advertised mask keys; secagg needs {threshold}"
        )
    shares = share_secrets(secrets, dealt, threshold)
    mine: tuple[int, int, int] | None = None
    for holder in dealt:
        point, b, s = shares[holder]
        if holder == me:
            mine = (point, b, s)
            continue
        ident = ctx.member(holder)
        if ident is None:
            raise SecAggError(f"{holder} is not an active member")
        bundle = wire.encode(wire.ShareBundle(round_, me, holder, point, b, s))
        await mode.send_to(round_, "secagg-shares", mode.seal_for(round_, bundle, [ident]), [ident])
    bundles = await mode.mailbox.wait_for("shares", round_, set(dealt) - {me}, timeout)
    participants = tuple(sorted([me, *(a for a in bundles if a in adverts)], key=str.lower))
    return adverts, participants, mine


async def deal_to_seats(
    mode: ProtectionMode, round_: int, secrets: MaskSecrets, seats: frozenset[str]
) -> Dealt:
    """Phases 1 and 2 with a committee: deal the shares to the seats, then advertise the mask
    key to every other member; the participants are this member and those whose advert came
    (waited for at most :func:`advert_wait`)."""
    ctx = mode.ctx
    me, others = ctx.address, ctx.others()
    holders = [i for i in ctx.members() if i.address.lower() in seats]
    threshold = share_threshold(seats)
    if len(holders) < threshold:
        raise SecAggError(
            f"only {len(holders)} of the committee's seats are active members; unmasking "
            f"needs {threshold}"
        )
    shares = share_secrets(secrets, [h.address for h in holders], threshold)
    mine: tuple[int, int, int] | None = None
    bundles: list[tuple[Identity, bytes]] = []
    for holder in holders:
        point, b, s = shares[holder.address]
        if holder.address.lower() == me.lower():
            mine = (point, b, s)
            continue
        bundle = wire.encode(wire.ShareBundle(round_, me, holder.address, point, b, s))
        bundles.append((holder, bundle))
    await _send_each(mode, round_, "secagg-shares", bundles)
    # dealt before advertised: an honest member every peer counts as a participant has dealt
    advert = wire.encode(wire.KeyAdvert(round_, me, secrets.mask_public()))
    await _send_each(mode, round_, "secagg-keys", [(o, advert) for o in others])
    adverts = await mode.mailbox.wait_for(
        "keys", round_, {o.address for o in others}, advert_wait(ctx, round_)
    )
    return adverts, tuple(sorted([me, *adverts], key=str.lower)), mine


def advert_wait(ctx: ModeContext, round_: int) -> float:
    """How long to wait for the other members' mask keys: the round timeout, but at most half
    of what is left of the commit window, so that a member that never advertises (crashed
    after the draw) leaves everyone the other half to mask and commit."""
    left = ctx.ledger.round_info(round_).commit_deadline - time.time()
    return max(0.0, min(ctx.settings.round_timeout, left / 2))


async def _send_each(
    mode: ProtectionMode, round_: int, kind: str, messages: list[tuple[Identity, bytes]]
) -> None:
    """Seal each plaintext to its recipient alone and send them all in parallel: one envelope
    of constant size per member (an envelope sealed to all grows by a key slot per recipient,
    N^2 bytes in all)."""
    async with trio.open_nursery() as nursery:
        for ident, plaintext in messages:
            blob = mode.seal_for(round_, plaintext, [ident])
            nursery.start_soon(mode.send_to, round_, kind, blob, [ident])
