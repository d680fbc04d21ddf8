"""Compression: top-k with error feedback and 8-bit quantization, against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from node.consensus.compression import (
    CompressionConfig,
    UpdateCodec,
    decode_compressed,
    quantize8,
    shared_indices,
    top_k_indices,
)
from node.consensus.update import ModelUpdate, UpdateFormatError, encode_update

ADDR = "0x" + "a" * 40


def update(delta, round_=1):
    return ModelUpdate(round_, ADDR, 10, 0.5, np.asarray(delta, dtype=np.float32))


def test_top_k_picks_the_largest_magnitudes():
    assert top_k_indices(np.array([0.1, -3, 2, 0.5, -2.5]), 2).tolist() == [1, 4]


def test_error_feedback_delays_but_never_loses_hand_worked():
    codec = UpdateCodec(CompressionConfig(topk=0.25), 4)
    sent1 = decode_compressed(codec.encode(update([1, 0.25, -0.5, 0.125])))
    assert sent1.delta.tolist() == [1, 0, 0, 0]
    assert codec.feedback.residual.tolist() == [0, 0.25, -0.5, 0.125]
    sent2 = decode_compressed(codec.encode(update([0, 0.5, 0, 0], 2)))
    assert sent2.delta.tolist() == [0, 0.75, 0, 0]  # 0.5 now + 0.25 held back from round 1
    assert codec.feedback.residual.tolist() == [0, 0, -0.5, 0.125]
    # invariant: everything trained = everything sent + the residual
    assert np.allclose(sent1.delta + sent2.delta + codec.feedback.residual, [1, 0.75, -0.5, 0.125])


def test_quantization_error_is_at_most_half_a_step():
    v = np.random.default_rng(0).normal(size=10_000).astype(np.float32)
    q, scale = quantize8(v)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    assert scale == pytest.approx(np.abs(v).max() / 127)
    assert np.abs(q * scale - v).max() <= scale / 2 + 1e-7


@pytest.mark.parametrize("quantize,limit", [(False, 0.15), (True, 0.06)])
def test_top_10_percent_bytes(quantize, limit):
    n = 100_000
    delta = np.random.default_rng(1).normal(size=n)
    raw = len(encode_update(update(delta)))
    blob = UpdateCodec(CompressionConfig(topk=0.1, quantize=quantize), n).encode(update(delta))
    assert len(blob) <= limit * raw  # bitmap n/8 bytes + k values
    back = decode_compressed(blob, expected_values=n)
    assert np.count_nonzero(back.delta) == n // 10


def test_malformed_compressed_updates_fail_clearly():
    blob = UpdateCodec(CompressionConfig(topk=0.5), 8).encode(update(np.arange(8)))
    with pytest.raises(UpdateFormatError, match="carries"):
        decode_compressed(blob[:-1])
    with pytest.raises(UpdateFormatError, match="the model has 9"):
        decode_compressed(blob, expected_values=9)
    with pytest.raises(UpdateFormatError, match="bad magic"):
        decode_compressed(b"MMU1" + blob[4:])
    with pytest.raises(ValueError, match=r"top-k fraction must be in \(0, 1\]"):
        CompressionConfig(topk=1.5)


def test_shared_indices_are_common_to_all_peers_and_change_per_round():
    a, b = shared_indices(b"round-7", 1000, 100), shared_indices(b"round-7", 1000, 100)
    assert np.array_equal(a, b) and a.size == 100 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, shared_indices(b"round-8", 1000, 100))
