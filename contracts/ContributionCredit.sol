// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumAdmin} from "./ConsortiumAdmin.sol";
import {IContributionCredit} from "./IContributionCredit.sol";

/**
 * @title ContributionCredit
 * @notice medmesh Contribution Credit (MMC): an ERC-20 balance of what each institution
 * contributed to finalized training rounds. Only the minter (the RoundLedger, set once by
 * the admin) creates credits, and burns them when it slashes a contributor whose update the
 * consortium left out. Transfers (and `transferFrom`) are a consortium setting: off at
 * deployment, switched on or off by the admin; approvals are always allowed.
 */
contract ContributionCredit is ConsortiumAdmin, IContributionCredit {
    string private constant _NAME = "medmesh Contribution Credit";
    string private constant _SYMBOL = "MMC";

    mapping(address account => uint256) private _balances;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;
    uint256 private _totalSupply;
    address private _minter;
    bool private _transfersEnabled;

    /// @notice Transfers are disabled; `from` cannot send to `to`.
    /// @param from The sender.
    /// @param to The receiver.
    error ContributionCreditTransfersDisabled(address from, address to);

    /// @notice `account` is not the minter.
    /// @param account The caller.
    error ContributionCreditUnauthorizedMinter(address account);

    /// @notice The minter is already set to `minter`.
    /// @param minter The current minter.
    error ContributionCreditMinterAlreadySet(address minter);

    /// @notice The zero address cannot be the minter.
    /// @param minter The rejected minter.
    error ContributionCreditInvalidMinter(address minter);

    /// @notice Transfers are already in the state `enabled`.
    /// @param enabled The current (and requested) setting.
    error ContributionCreditTransfersAlreadySet(bool enabled);

    /// @notice `sender` holds `balance`, less than `needed`.
    /// @param sender The sender.
    /// @param balance Its balance.
    /// @param needed The amount asked for.
    error ContributionCreditInsufficientBalance(address sender, uint256 balance, uint256 needed);

    /// @notice `spender` may spend `allowance`, less than `needed`.
    /// @param spender The spender.
    /// @param allowance Its allowance.
    /// @param needed The amount asked for.
    error ContributionCreditInsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    /// @notice Credits cannot go to the zero address.
    /// @param receiver The rejected receiver.
    error ContributionCreditInvalidReceiver(address receiver);

    /// @notice The zero address cannot be approved.
    /// @param spender The rejected spender.
    error ContributionCreditInvalidSpender(address spender);

    /// @notice `value` credits moved from `from` to `to` (from zero: minted). ERC-20.
    /// @param from The sender (zero for a mint).
    /// @param to The receiver.
    /// @param value The amount.
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice `owner` allowed `spender` to spend `value` of its credits. ERC-20.
    /// @param owner The holder.
    /// @param spender The spender.
    /// @param value The allowance.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice The admin set `minter` as the only account that mints.
    /// @param minter The minter (the RoundLedger).
    event MinterSet(address indexed minter);

    /// @notice The admin switched transfers on (`enabled`) or off.
    /// @param admin The admin.
    /// @param enabled The new setting.
    event TransfersToggled(address indexed admin, bool enabled);

    /// @notice The minter burned `amount` credits of `account` as a penalty.
    /// @param account The penalized holder.
    /// @param amount The credits burned.
    event Slashed(address indexed account, uint256 amount);

    /// @param initialAdmin The consortium admin.
    constructor(address initialAdmin) ConsortiumAdmin(initialAdmin) {}

    /// @notice Sets the minter, once. Admin only.
    /// @param minter_ The RoundLedger that mints credits for finalized rounds.
    function setMinter(address minter_) external onlyAdmin {
        if (_minter != address(0)) revert ContributionCreditMinterAlreadySet(_minter);
        if (minter_ == address(0)) revert ContributionCreditInvalidMinter(minter_);
        _minter = minter_;
        emit MinterSet(minter_);
    }

    /// @notice Switches transfers on or off. Admin only.
    /// @param enabled The new setting; must differ from the current one.
    function setTransfersEnabled(bool enabled) external onlyAdmin {
        if (_transfersEnabled == enabled) revert ContributionCreditTransfersAlreadySet(enabled);
        _transfersEnabled = enabled;
        emit TransfersToggled(msg.sender, enabled);
    }

    /// @inheritdoc IContributionCredit
    function mint(address to, uint256 amount) external {
        if (msg.sender != _minter) revert ContributionCreditUnauthorizedMinter(msg.sender);
        if (to == address(0)) revert ContributionCreditInvalidReceiver(to);
        _totalSupply += amount;
        _balances[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @inheritdoc IContributionCredit
    function slash(address account, uint256 amount) external returns (uint256 burned) {
        if (msg.sender != _minter) revert ContributionCreditUnauthorizedMinter(msg.sender);
        uint256 balance = _balances[account];
        burned = balance < amount ? balance : amount;
        unchecked {
            _balances[account] = balance - burned;
            _totalSupply -= burned;
        }
        emit Transfer(account, address(0), burned);
        emit Slashed(account, burned);
    }

    /// @notice Moves `value` credits from the caller to `to`. ERC-20; reverts while transfers are disabled.
    /// @param to The receiver.
    /// @param value The amount.
    /// @return Always true (failures revert).
    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Moves `value` credits from `from` to `to` using the caller's allowance. ERC-20;
    /// reverts while transfers are disabled.
    /// @param from The holder.
    /// @param to The receiver.
    /// @param value The amount.
    /// @return Always true (failures revert).
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        if (!_transfersEnabled) revert ContributionCreditTransfersDisabled(from, to);
        uint256 allowed = _allowances[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert ContributionCreditInsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                _allowances[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Lets `spender` spend up to `value` of the caller's credits. ERC-20.
    /// @param spender The spender.
    /// @param value The allowance.
    /// @return Always true (failures revert).
    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ContributionCreditInvalidSpender(spender);
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Token name. ERC-20.
    /// @return "medmesh Contribution Credit".
    function name() external pure returns (string memory) {
        return _NAME;
    }

    /// @notice Token symbol. ERC-20.
    /// @return "MMC".
    function symbol() external pure returns (string memory) {
        return _SYMBOL;
    }

    /// @notice Decimals of the smallest unit. ERC-20.
    /// @return 18.
    function decimals() external pure returns (uint8) {
        return 18;
    }

    /// @notice All credits minted so far. ERC-20.
    /// @return The total supply.
    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice Credits held by `account`. ERC-20.
    /// @param account The holder.
    /// @return The balance.
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice What `spender` may still spend of `owner`'s credits. ERC-20.
    /// @param owner The holder.
    /// @param spender The spender.
    /// @return The allowance.
    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @notice The account allowed to mint (zero until set).
    /// @return The minter.
    function minter() external view returns (address) {
        return _minter;
    }

    /// @notice Whether transfers are enabled.
    /// @return True while the admin has them switched on.
    function transfersEnabled() external view returns (bool) {
        return _transfersEnabled;
    }

    function _transfer(address from, address to, uint256 value) private {
        if (!_transfersEnabled) revert ContributionCreditTransfersDisabled(from, to);
        if (to == address(0)) revert ContributionCreditInvalidReceiver(to);
        uint256 balance = _balances[from];
        if (balance < value) revert ContributionCreditInsufficientBalance(from, balance, value);
        unchecked {
            _balances[from] = balance - value;
        }
        _balances[to] += value;
        emit Transfer(from, to, value);
    }
}
