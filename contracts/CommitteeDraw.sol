// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title CommitteeDraw
 * @notice A keyed permutation of the slots `0..n-1`: the member at slot `i` sits on a round's
 * committee of `k` iff `seat(key, i, n) < k`, so a committee has exactly `k` members and each
 * check costs O(1) gas (no loop over members). The permutation is a balanced 4-round Feistel
 * network on `2h` bits (`4**h >= n`; round `j`'s function is the low `h` bits of
 * `keccak256(abi.encode(key, j, right))`), restricted to `0..n-1` by cycle-walking (Black and
 * Rogaway, "Ciphers with Arbitrary Finite Domains", CT-RSA 2002): fewer than 4 walks expected,
 * since `4**h < 4n`. `node.consensus.committee.seat` is the same function in Python.
 */
library CommitteeDraw {
    /// @dev Rounds of the Feistel network.
    uint256 private constant _ROUNDS = 4;

    /// @notice The seat of `slot` among `n` slots under `key`: a permutation of `0..n-1`.
    /// @param key The round's key, keccak256(abi.encode(seed, round)).
    /// @param slot The member's slot; below `n`.
    /// @param n The number of slots; nonzero.
    /// @return y The seat.
    function seat(bytes32 key, uint256 slot, uint256 n) internal pure returns (uint256 y) {
        uint256 h = 1;
        while (4 ** h < n) ++h;
        y = _permute(key, slot, h);
        while (y >= n) y = _permute(key, y, h);
    }

    function _permute(bytes32 key, uint256 x, uint256 h) private pure returns (uint256) {
        uint256 mask = (1 << h) - 1;
        uint256 left = x >> h;
        uint256 right = x & mask;
        for (uint256 j = 0; j < _ROUNDS; ++j) {
            uint256 f = uint256(keccak256(abi.encode(key, j, right))) & mask;
            (left, right) = (right, left ^ f);
        }
        return (left << h) | right;
    }
}
