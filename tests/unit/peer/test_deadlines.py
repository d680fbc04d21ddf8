"""node.peer.deadlines: the blob and quorum waits follow measured training and transfer times.

Expected values are worked out by hand from the formula in the module docstring
(``clamp(slack * max(train + transfer, lag), floor, ceiling)``), not read back from the code."""

from __future__ import annotations

import pytest

from node.peer.deadlines import DeadlineBounds, WaitClock, stage_deadline

BOUNDS = DeadlineBounds(floor=5.0, ceiling=120.0, assumed_mbit=10.0, slack=2.0)
MB4 = 4_000_000  # a 1M-parameter float32 update


def test_loopback_small_model_stays_at_the_configured_floor():
    clock = WaitClock(BOUNDS)
    clock.trained(0.3)
    clock.sending(2_000, 3)
    clock.transferred(2_000, 0.01)
    assert clock.deadline() == 5.0  # 2 * (0.3 + 0.01) = 0.62 s, below the floor


def test_first_round_assumes_the_configured_link_rate():
    clock = WaitClock(BOUNDS)
    clock.trained(4.0)
    clock.sending(MB4, 3)
    # 3 copies of 4 MB one after another at 10 Mbit/s: 3 * 32 Mbit / 10 Mbit/s = 9.6 s
    assert clock.deadline() == pytest.approx(2 * (4.0 + 9.6))


def test_measured_slowest_stream_sets_the_transfer_time():
    clock = WaitClock(BOUNDS)
    clock.trained(1.0)
    clock.sending(MB4, 3)
    clock.transferred(MB4, 0.4)  # 100 Mbit/s-ish peers
    clock.transferred(MB4, 3.2)  # a hospital on a 10 Mbit/s link
    assert clock.deadline() == pytest.approx(2 * (1.0 + 3.2))


def test_a_loaded_machine_trains_slower_and_waits_longer():
    quiet, loaded = WaitClock(BOUNDS), WaitClock(BOUNDS)
    for clock, train in ((quiet, 2.0), (loaded, 11.0)):
        clock.trained(train)
        clock.sending(MB4, 3)
        clock.transferred(MB4, 0.5)
    assert quiet.deadline() == pytest.approx(5.0)  # 2 * 2.5
    assert loaded.deadline() == pytest.approx(23.0)  # 2 * 11.5


def test_a_missed_blob_doubles_the_next_wait_then_it_decays():
    clock = WaitClock(BOUNDS)
    clock.trained(1.0)
    clock.sending(1_000, 3)
    clock.transferred(1_000, 0.1)
    first = clock.deadline()
    assert first == 5.0
    clock.waited(first, complete=False, deadline=first)  # a committed blob did not come in time
    assert clock.deadline() == 10.0  # 2 * 5
    clock.waited(7.0, complete=True, deadline=10.0)  # it came after 7 s
    assert clock.deadline() == 14.0  # 2 * max(7, 5 / 2)
    for _ in range(3):  # the link recovered: 0.2 s waits
        clock.waited(0.2, complete=True, deadline=14.0)
    assert clock.deadline() == 5.0  # 7 / 8 = 0.875 s -> floor


def test_the_ceiling_bounds_every_wait():
    clock = WaitClock(BOUNDS)
    clock.trained(500.0)
    assert clock.deadline() == 120.0
    assert stage_deadline(BOUNDS, train_s=0.0, transfer_s=0.0, lag_s=1e6) == 120.0


def test_the_slowest_stream_decays_by_half_per_round_once_the_link_recovers():
    clock = WaitClock(BOUNDS)
    clock.sending(MB4, 1)
    clock.transferred(MB4, 16.0)
    clock.sending(MB4, 1)
    clock.transferred(MB4, 0.4)
    clock.transferred(MB4, 0.3)
    assert clock.transfer_s() == pytest.approx(8.0)  # max(0.4, 16 / 2), not halved per transfer


@pytest.mark.parametrize(
    "kwargs",
    [dict(floor=0.0), dict(floor=10.0, ceiling=5.0), dict(assumed_mbit=0.0), dict(slack=0.5)],
)
def test_impossible_bounds_raise(kwargs):
    with pytest.raises(ValueError):
        DeadlineBounds(**kwargs)


def test_no_wait_runs_past_half_the_room_before_the_attestation_deadline():
    clock = WaitClock(BOUNDS)
    clock.trained(30.0)  # 2 * 30 = 60 s derived
    assert clock.deadline(room=200.0) == 60.0
    assert clock.deadline(room=40.0) == 20.0  # half of what is left: the rest attests and finalizes
    assert (
        clock.deadline(room=-3.0) == 1.0
    )  # past the deadline: the shortest wait, not a negative one
