// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title ConsortiumAdmin
 * @notice Single-admin access control (in the manner of OpenZeppelin's `Ownable`) for the
 * consortium contracts. The admin is set at construction and can hand the role on.
 * @dev The admin bootstraps the consortium (genesis admissions) and holds the consortium
 * settings (credit transfers, forfeited bonds); admission after genesis, suspension and
 * revocation are decided by member quorums in HospitalRegistry, not by the admin.
 */
abstract contract ConsortiumAdmin {
    address private _admin;

    /// @notice `account` tried an admin-only action.
    /// @param account The caller that is not the admin.
    error ConsortiumAdminUnauthorizedAccount(address account);

    /// @notice The zero address cannot be the admin.
    /// @param admin The rejected admin address.
    error ConsortiumAdminInvalidAdmin(address admin);

    /// @notice The admin role moved from `previousAdmin` to `newAdmin`.
    /// @param previousAdmin The former admin (zero at construction).
    /// @param newAdmin The new admin.
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);

    /// @dev Restricts a function to the admin.
    modifier onlyAdmin() {
        if (msg.sender != _admin) revert ConsortiumAdminUnauthorizedAccount(msg.sender);
        _;
    }

    /// @param initialAdmin The first admin of the consortium contract.
    constructor(address initialAdmin) {
        if (initialAdmin == address(0)) revert ConsortiumAdminInvalidAdmin(address(0));
        _transferAdmin(initialAdmin);
    }

    /// @notice The current admin.
    /// @return The admin address.
    function admin() public view returns (address) {
        return _admin;
    }

    /// @notice Hands the admin role to `newAdmin`. Admin only.
    /// @param newAdmin The next admin; must not be the zero address.
    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ConsortiumAdminInvalidAdmin(address(0));
        _transferAdmin(newAdmin);
    }

    function _transferAdmin(address newAdmin) private {
        address previous = _admin;
        _admin = newAdmin;
        emit AdminTransferred(previous, newAdmin);
    }
}
