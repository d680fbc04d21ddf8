// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IContributionCredit
 * @notice The hooks the round ledger uses to pay and to penalize contributors.
 */
interface IContributionCredit {
    /// @notice Creates `amount` credits for `to`. Only the minter may call it.
    /// @param to The receiver of the new credits.
    /// @param amount The amount in the token's smallest unit (18 decimals).
    function mint(address to, uint256 amount) external;

    /// @notice Burns up to `amount` credits of `account` (all of them if it holds less).
    /// Only the minter may call it.
    /// @param account The penalized holder.
    /// @param amount The penalty in the token's smallest unit.
    /// @return burned The credits actually burned.
    function slash(address account, uint256 amount) external returns (uint256 burned);
}
