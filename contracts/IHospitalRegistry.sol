// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title IHospitalRegistry
 * @notice What other consortium contracts read from the hospital registry.
 */
interface IHospitalRegistry {
    /// @notice The membership clock (see `membership`).
    /// @param epoch Membership changes so far.
    /// @param active Active members now (what `activeCount` returns).
    /// @param departures Times an Active member stopped being Active.
    struct Membership {
        uint64 epoch;
        uint64 active;
        uint64 departures;
    }

    /// @notice Whether `account` belongs to an admitted, non-revoked institution.
    /// @param account The account to check.
    /// @return True when the identity's status is Active.
    function isActive(address account) external view returns (bool);

    /// @notice How many identities are Active right now.
    /// @return The number of Active identities.
    function activeCount() external view returns (uint256);

    /// @notice The membership clock. `epoch` counts every change of the Active set (an
    /// admission, suspension, reinstatement, revocation or exit of an Active member);
    /// `departures` counts the changes that took a member out of it. A round snapshots both
    /// when it opens, so that its quorum is computed over the membership of that moment.
    /// @return The clock now.
    function membership() external view returns (Membership memory);

    /// @notice When `account` last joined and last left the Active set, in membership epochs:
    /// it was Active at epoch `e` iff `activeSince != 0 && activeSince <= e` and
    /// (`activeUntil == 0` or `activeUntil > e`); it is Active now iff `activeSince != 0` and
    /// `activeUntil == 0`. Only the latest stay is kept (a reinstated member's earlier stay is
    /// forgotten, which can only shrink what it may do in a round opened before it).
    /// @param account The account to look up.
    /// @return activeSince Epoch of its latest admission or reinstatement (0: never Active).
    /// @return activeUntil Epoch at which it then left the Active set (0: still Active).
    function tenure(address account) external view returns (uint64 activeSince, uint64 activeUntil);
    /// @notice The Active slot of `account`, which the round ledger's committee draw permutes.
    /// A member joining the Active set takes the slot the last departure freed, else slot
    /// `slotCount` (a new one); it keeps it while it stays Active. `since` is the start of
    /// that stay in membership epochs (0: not Active, holds no slot).
    /// @param account The account to look up.
    /// @return slot Its slot (0 when it holds none: check `since`).
    /// @return since Epoch from which it holds the slot (`tenure`'s `activeSince`; 0: none).
    function slotOf(address account) external view returns (uint64 slot, uint64 since);

    /// @notice Active slots ever opened: every Active member's slot is below it, and
    /// `slotCount - activeCount` of them are vacant (freed and not yet taken again).
    /// @return The count.
    function slotCount() external view returns (uint64);

    /// @notice The cohort `account` declared at registration, which its admission endorsed:
    /// the most training samples one of its commitments may claim.
    /// @param account The account to look up.
    /// @return The cohort (0 for an account without an identity).
    function cohortOf(address account) external view returns (uint64);
}
