// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IHospitalRegistry
 * @notice What other consortium contracts read from the hospital registry.
 */
interface IHospitalRegistry {
    /// @notice Whether `account` belongs to an admitted, non-revoked institution.
    /// @param account The account to check.
    /// @return True when the identity's status is Active.
    function isActive(address account) external view returns (bool);

    /// @notice How many identities are Active right now.
    /// @return The number of Active identities.
    function activeCount() external view returns (uint256);

    /// @notice The cohort `account` declared at registration, which its admission endorsed:
    /// the most training samples one of its commitments may claim.
    /// @param account The account to look up.
    /// @return The cohort (0 for an account without an identity).
    function cohortOf(address account) external view returns (uint64);
}
