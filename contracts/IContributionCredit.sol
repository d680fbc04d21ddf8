// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IContributionCredit
 * @notice The minting hook the round ledger uses to pay contributors.
 */
interface IContributionCredit {
    /// @notice Creates `amount` credits for `to`. Only the minter may call it.
    /// @param to The receiver of the new credits.
    /// @param amount The amount in the token's smallest unit (18 decimals).
    function mint(address to, uint256 amount) external;
}
