// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumAdmin} from "./ConsortiumAdmin.sol";
import {IContributionCredit} from "./IContributionCredit.sol";
import {IHospitalRegistry} from "./IHospitalRegistry.sol";
import {RoundLedger} from "./RoundLedger.sol";

/**
 * @title IncentiveDistributor
 * @notice Mints contribution credits for finalized rounds by amounts computed off chain, by an
 * incentive scheme the consortium names (Shapley values, leave-one-out gains, reputation...),
 * and burns credits of contributors the round left out. Every award records its scheme in its
 * events, so anyone can recompute it from the round's public record.
 *
 * Rules: only the consortium admin awards; only for a round the RoundLedger finalized; once
 * per (round, scheme); credits only to Active members in the round's finalized accepted set,
 * penalties only to members that committed in the round and were left out of that set; all of
 * a round's awards together stay within `budgetPerRound`.
 * @dev The distributor must be the minter of its ContributionCredit token (set once by the
 * token's admin). A consortium that pays by an off-chain scheme deploys its RoundLedger with a
 * zero `creditPerRound`, or gives the distributor a token of its own, so no round is paid twice.
 */
contract IncentiveDistributor is ConsortiumAdmin {
    /// @notice One line of an award: an account and an amount of credits (minted or burned).
    /// @param account The member.
    /// @param amount Credits in the token's smallest unit; nonzero.
    struct Entry {
        address account;
        uint256 amount;
    }

    IHospitalRegistry private immutable _registry;
    RoundLedger private immutable _roundLedger;
    IContributionCredit private immutable _credit;
    uint256 private immutable _budgetPerRound;

    mapping(uint256 round => uint256) private _awardedInRound;
    mapping(uint256 round => mapping(bytes32 scheme => bool)) private _settled;

    /// @notice A zero budget, or a zero address for the registry, the round ledger or the token.
    /// @param budgetPerRound The budget given.
    error IncentiveDistributorInvalidSetup(uint256 budgetPerRound);

    /// @notice The scheme name must be nonzero.
    error IncentiveDistributorInvalidScheme();

    /// @notice `round` is not finalized on the round ledger.
    /// @param round The round.
    /// @param status Its status there.
    error IncentiveDistributorRoundNotFinalized(uint256 round, RoundLedger.RoundStatus status);

    /// @notice `scheme` was already awarded for `round`.
    /// @param round The round.
    /// @param scheme The scheme.
    error IncentiveDistributorAlreadyAwarded(uint256 round, bytes32 scheme);

    /// @notice An award must name at least one account.
    /// @param round The round.
    /// @param scheme The scheme.
    error IncentiveDistributorEmptyAward(uint256 round, bytes32 scheme);

    /// @notice An account list is not strictly ascending at `position`.
    /// @param position Index of the first out-of-order (or repeated) address.
    error IncentiveDistributorAccountsNotSorted(uint256 position);

    /// @notice Every amount must be nonzero; `account` was given zero.
    /// @param account The account.
    error IncentiveDistributorZeroAmount(address account);

    /// @notice `account` is not an Active member of the registry.
    /// @param account The account.
    error IncentiveDistributorNotActiveMember(address account);

    /// @notice `account` is not in the finalized accepted set of `round`.
    /// @param round The round.
    /// @param account The account.
    error IncentiveDistributorNotAccepted(uint256 round, address account);

    /// @notice `account` cannot be penalized in `round`: it made no commitment there, or its
    /// update was accepted.
    /// @param round The round.
    /// @param account The account.
    error IncentiveDistributorNotLeftOut(uint256 round, address account);

    /// @notice The award asks for `requested` credits; `remaining` of the round's budget is left.
    /// @param round The round.
    /// @param requested The award's total.
    /// @param remaining The budget left for the round.
    error IncentiveDistributorBudgetExceeded(uint256 round, uint256 requested, uint256 remaining);

    /// @notice `awarder` awarded `total` credits to `recipients` accounts for `round` by `scheme`.
    /// @param round The round.
    /// @param scheme The scheme's name (e.g. "shapley-gtg", right-padded ASCII).
    /// @param awarder The admin that sent the award.
    /// @param total Credits minted.
    /// @param recipients Accounts credited.
    event CreditsAwarded(
        uint256 indexed round, bytes32 indexed scheme, address indexed awarder, uint256 total, uint256 recipients
    );

    /// @notice `amount` credits were minted to `account` for `round` by `scheme`.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param account The member credited.
    /// @param amount Credits minted.
    event CreditAwarded(uint256 indexed round, bytes32 indexed scheme, address indexed account, uint256 amount);

    /// @notice `burned` of the `penalty` asked were burned from `account` for `round` by
    /// `scheme` (its balance, if lower).
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param account The member left out of the round's accepted set.
    /// @param penalty The penalty asked.
    /// @param burned Credits burned.
    event ContributorPenalized(
        uint256 indexed round, bytes32 indexed scheme, address indexed account, uint256 penalty, uint256 burned
    );

    /// @param initialAdmin The consortium admin (the only awarder).
    /// @param registry_ The hospital registry.
    /// @param roundLedger_ The round ledger whose finalized rounds are paid.
    /// @param credit_ The token this distributor mints (it must be made its minter).
    /// @param budgetPerRound_ Most credits (smallest unit) all awards of one round may mint.
    constructor(
        address initialAdmin,
        IHospitalRegistry registry_,
        RoundLedger roundLedger_,
        IContributionCredit credit_,
        uint256 budgetPerRound_
    ) ConsortiumAdmin(initialAdmin) {
        if (
            budgetPerRound_ == 0 || address(registry_) == address(0) || address(roundLedger_) == address(0)
                || address(credit_) == address(0)
        ) revert IncentiveDistributorInvalidSetup(budgetPerRound_);
        _registry = registry_;
        _roundLedger = roundLedger_;
        _credit = credit_;
        _budgetPerRound = budgetPerRound_;
    }

    /// @notice Awards `round`'s credits by `scheme`: mints each grant's amount to its account
    /// and burns up to each penalty's amount from its account. Admin only; once per (round, scheme).
    /// @param round A round the round ledger finalized.
    /// @param scheme The scheme's name; nonzero.
    /// @param grants Active members of the round's finalized accepted set, strictly ascending by
    /// account, with nonzero amounts whose sum stays within the round's remaining budget.
    /// @param penalties Members that committed in the round but were left out of its accepted
    /// set, strictly ascending by account, with nonzero amounts to burn (may be empty).
    function award(uint256 round, bytes32 scheme, Entry[] calldata grants, Entry[] calldata penalties)
        external
        onlyAdmin
    {
        if (scheme == bytes32(0)) revert IncentiveDistributorInvalidScheme();
        if (grants.length + penalties.length == 0) revert IncentiveDistributorEmptyAward(round, scheme);
        if (_settled[round][scheme]) revert IncentiveDistributorAlreadyAwarded(round, scheme);
        RoundLedger.Round memory r = _roundLedger.roundInfo(round);
        if (r.status != RoundLedger.RoundStatus.Finalized) revert IncentiveDistributorRoundNotFinalized(round, r.status);
        address[] memory accepted = _roundLedger.attestation(round, r.leader).accepted;

        uint256 total = _checkGrants(round, accepted, grants);
        _checkPenalties(round, accepted, penalties);
        uint256 remaining = _budgetPerRound - _awardedInRound[round];
        if (total > remaining) revert IncentiveDistributorBudgetExceeded(round, total, remaining);

        _settled[round][scheme] = true;
        _awardedInRound[round] += total;
        emit CreditsAwarded(round, scheme, msg.sender, total, grants.length);
        for (uint256 i = 0; i < grants.length; ++i) {
            _credit.mint(grants[i].account, grants[i].amount);
            emit CreditAwarded(round, scheme, grants[i].account, grants[i].amount);
        }
        for (uint256 i = 0; i < penalties.length; ++i) {
            uint256 burned = _credit.slash(penalties[i].account, penalties[i].amount);
            emit ContributorPenalized(round, scheme, penalties[i].account, penalties[i].amount, burned);
        }
    }

    // ------------------------------------------------------------------ views

    /// @notice Whether `scheme` was awarded for `round`.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @return True once awarded.
    function awarded(uint256 round, bytes32 scheme) external view returns (bool) {
        return _settled[round][scheme];
    }

    /// @notice Credits minted for `round` so far, all schemes together.
    /// @param round The round.
    /// @return The amount in the token's smallest unit.
    function awardedInRound(uint256 round) external view returns (uint256) {
        return _awardedInRound[round];
    }

    /// @notice Most credits all awards of one round may mint.
    /// @return The budget in the token's smallest unit.
    function budgetPerRound() external view returns (uint256) {
        return _budgetPerRound;
    }

    /// @notice The registry whose Active members may be credited.
    /// @return The registry address.
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @notice The round ledger whose finalized rounds are paid.
    /// @return The round ledger address.
    function roundLedger() external view returns (address) {
        return address(_roundLedger);
    }

    /// @notice The token this distributor mints.
    /// @return The token address.
    function credit() external view returns (address) {
        return address(_credit);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Checks the grants against the accepted set (both ascending: one merge walk) and
    /// the registry; returns their total.
    function _checkGrants(uint256 round, address[] memory accepted, Entry[] calldata grants)
        private
        view
        returns (uint256 total)
    {
        uint256 j = 0;
        for (uint256 i = 0; i < grants.length; ++i) {
            address account = _checkEntry(grants, i);
            while (j < accepted.length && accepted[j] < account) ++j;
            if (j == accepted.length || accepted[j] != account) revert IncentiveDistributorNotAccepted(round, account);
            if (!_registry.isActive(account)) revert IncentiveDistributorNotActiveMember(account);
            total += grants[i].amount;
        }
    }

    /// @dev Checks that each penalized member committed in the round and was left out.
    function _checkPenalties(uint256 round, address[] memory accepted, Entry[] calldata penalties) private view {
        uint256 j = 0;
        for (uint256 i = 0; i < penalties.length; ++i) {
            address account = _checkEntry(penalties, i);
            while (j < accepted.length && accepted[j] < account) ++j;
            bool wasAccepted = j < accepted.length && accepted[j] == account;
            if (wasAccepted || _roundLedger.commitment(round, account).samples == 0) {
                revert IncentiveDistributorNotLeftOut(round, account);
            }
        }
    }

    /// @dev Entry `i` of `entries`: strictly after entry `i - 1`, with a nonzero amount.
    function _checkEntry(Entry[] calldata entries, uint256 i) private pure returns (address account) {
        account = entries[i].account;
        if (i > 0 && account <= entries[i - 1].account) revert IncentiveDistributorAccountsNotSorted(i);
        if (entries[i].amount == 0) revert IncentiveDistributorZeroAmount(account);
    }
}
