// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IRoundBeacon
 * @notice What the round ledger reads from the per-round beacon (RoundBeacon).
 */
interface IRoundBeacon {
    /// @notice The beacon value of `round` once it is `Ready`; zero before, or if it failed.
    /// @param round The round.
    /// @return The value.
    function valueOf(uint256 round) external view returns (bytes32);

    /// @notice The round ledger this beacon serves.
    /// @return The ledger address.
    function ledger() external view returns (address);
}
