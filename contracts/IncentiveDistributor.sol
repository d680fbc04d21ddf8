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
 * Two ways to award: the consortium admin sends it (`award`), or the members endorse its hash
 * (`endorseAward`) and anyone executes it once more than the RoundLedger's quorum fraction of
 * the Active members endorsed that exact award (`awardByQuorum`).
 *
 * Rules: only the admin or a member quorum awards; only for a round the RoundLedger finalized; once
 * per (round, scheme); credits only to Active members in the round's finalized accepted set,
 * penalties only to members that committed in the round and were left out of that set; all of
 * a round's awards together stay within `budgetPerRound`, and all penalties of a round together,
 * whatever the scheme, burn at most `maxPenaltyPerRound` from any one member (so new scheme
 * names cannot repeat a penalty until it reaches credits the member earned in other rounds).
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
    uint256 private immutable _maxPenaltyPerRound;

    mapping(uint256 round => uint256) private _awardedInRound;
    mapping(uint256 round => mapping(address member => uint256)) private _penalizedInRound;
    mapping(uint256 round => mapping(bytes32 scheme => bool)) private _settled;
    mapping(uint256 round => mapping(bytes32 scheme => mapping(address member => bytes32))) private _endorsed;
    mapping(uint256 round => mapping(bytes32 scheme => mapping(bytes32 awardHash => uint256))) private _endorsements;

    /// @notice A zero budget, or a zero address for the registry, the round ledger or the token.
    /// @param budgetPerRound The budget given.
    error IncentiveDistributorInvalidSetup(uint256 budgetPerRound);

    /// @notice The penalty cap per member and round exceeds the budget per round.
    /// @param maxPenaltyPerRound The cap given.
    /// @param budgetPerRound The budget given.
    error IncentiveDistributorInvalidPenaltyCap(uint256 maxPenaltyPerRound, uint256 budgetPerRound);

    /// @notice The penalties of `round` would burn more than `maxPenaltyPerRound` from `account`,
    /// all schemes together: `requested` asked now, `remaining` of the cap left.
    /// @param round The round.
    /// @param account The penalized member.
    /// @param requested The penalty asked.
    /// @param remaining What the cap still allows for this member in this round.
    error IncentiveDistributorPenaltyCapExceeded(uint256 round, address account, uint256 requested, uint256 remaining);

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

    /// @notice `member` already endorsed an award of `round` by `scheme`.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param member The member.
    error IncentiveDistributorAlreadyEndorsed(uint256 round, bytes32 scheme, address member);

    /// @notice The award was endorsed by `endorsements` of `activeCount` Active members: not
    /// more than the quorum fraction.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param endorsements Members that endorsed this exact award.
    /// @param activeCount Active members now.
    error IncentiveDistributorQuorumNotReached(uint256 round, bytes32 scheme, uint256 endorsements, uint256 activeCount);

    /// @notice `awarder` awarded `total` credits to `recipients` accounts for `round` by `scheme`.
    /// @param round The round.
    /// @param scheme The scheme's name (e.g. "shapley-gtg", right-padded ASCII).
    /// @param awarder Who sent the award: the admin, or anyone executing a member-quorum award.
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

    /// @notice `member` endorsed the award `awardHash` of `round` by `scheme`, which now has
    /// `endorsements` endorsements.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param member The endorsing member.
    /// @param awardHash `awardHash(round, scheme, grants, penalties)` of the endorsed award.
    /// @param endorsements Endorsements of that award so far.
    event AwardEndorsed(
        uint256 indexed round, bytes32 indexed scheme, address indexed member, bytes32 awardHash, uint256 endorsements
    );

    /// @notice The award `awardHash` of `round` by `scheme` was executed on the endorsement of
    /// `endorsements` of `activeCount` Active members.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param awardHash The award's hash.
    /// @param endorsements Its endorsements.
    /// @param activeCount Active members at execution.
    event AwardQuorumReached(
        uint256 indexed round, bytes32 indexed scheme, bytes32 awardHash, uint256 endorsements, uint256 activeCount
    );

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
    /// @param maxPenaltyPerRound_ Most credits all awards of one round may burn from one member
    /// (0: no penalties); at most `budgetPerRound_`.
    constructor(
        address initialAdmin,
        IHospitalRegistry registry_,
        RoundLedger roundLedger_,
        IContributionCredit credit_,
        uint256 budgetPerRound_,
        uint256 maxPenaltyPerRound_
    ) ConsortiumAdmin(initialAdmin) {
        if (
            budgetPerRound_ == 0 || address(registry_) == address(0) || address(roundLedger_) == address(0)
                || address(credit_) == address(0)
        ) revert IncentiveDistributorInvalidSetup(budgetPerRound_);
        if (maxPenaltyPerRound_ > budgetPerRound_) {
            revert IncentiveDistributorInvalidPenaltyCap(maxPenaltyPerRound_, budgetPerRound_);
        }
        _maxPenaltyPerRound = maxPenaltyPerRound_;
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
    /// set, strictly ascending by account, with nonzero amounts to burn (may be empty); each
    /// member's penalties for the round, all schemes together, stay within `maxPenaltyPerRound`.
    function award(uint256 round, bytes32 scheme, Entry[] calldata grants, Entry[] calldata penalties)
        external
        onlyAdmin
    {
        _award(round, scheme, grants, penalties);
    }

    /// @notice Endorses, as an Active member, the award of `round` by `scheme` whose
    /// `awardHash` is given; once per (round, scheme, member), before the award is made.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param hash `awardHash(round, scheme, grants, penalties)` of the award the member computed.
    function endorseAward(uint256 round, bytes32 scheme, bytes32 hash) external {
        if (!_registry.isActive(msg.sender)) revert IncentiveDistributorNotActiveMember(msg.sender);
        if (_settled[round][scheme]) revert IncentiveDistributorAlreadyAwarded(round, scheme);
        if (_endorsed[round][scheme][msg.sender] != bytes32(0)) {
            revert IncentiveDistributorAlreadyEndorsed(round, scheme, msg.sender);
        }
        _endorsed[round][scheme][msg.sender] = hash;
        uint256 count = ++_endorsements[round][scheme][hash];
        emit AwardEndorsed(round, scheme, msg.sender, hash, count);
    }

    /// @notice Makes the award of `round` by `scheme` that more than the RoundLedger's quorum
    /// fraction of the Active members endorsed; anyone may send it. Same rules as `award`.
    /// @param round A round the round ledger finalized.
    /// @param scheme The scheme's name; nonzero.
    /// @param grants As for `award`.
    /// @param penalties As for `award`.
    function awardByQuorum(uint256 round, bytes32 scheme, Entry[] calldata grants, Entry[] calldata penalties)
        external
    {
        bytes32 hash = awardHash(round, scheme, grants, penalties);
        uint256 count = _endorsements[round][scheme][hash];
        uint256 active = _registry.activeCount();
        RoundLedger.Config memory c = _roundLedger.config();
        if (count * c.quorumDenominator <= active * c.quorumNumerator) {
            revert IncentiveDistributorQuorumNotReached(round, scheme, count, active);
        }
        emit AwardQuorumReached(round, scheme, hash, count, active);
        _award(round, scheme, grants, penalties);
    }

    /// @notice The hash members endorse: `keccak256(abi.encode(round, scheme, grants, penalties))`.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param grants The grants, as `award` takes them.
    /// @param penalties The penalties, as `award` takes them.
    /// @return The award's hash.
    function awardHash(uint256 round, bytes32 scheme, Entry[] calldata grants, Entry[] calldata penalties)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(round, scheme, grants, penalties));
    }

    /// @notice The award hash `member` endorsed for `round` by `scheme` (zero: none).
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param member The member.
    /// @return The endorsed hash.
    function endorsement(uint256 round, bytes32 scheme, address member) external view returns (bytes32) {
        return _endorsed[round][scheme][member];
    }

    /// @notice How many members endorsed the award `hash` of `round` by `scheme`.
    /// @param round The round.
    /// @param scheme The scheme.
    /// @param hash The award's hash.
    /// @return The count.
    function endorsements(uint256 round, bytes32 scheme, bytes32 hash) external view returns (uint256) {
        return _endorsements[round][scheme][hash];
    }

    /// @dev The award itself, after `award`'s or `awardByQuorum`'s authorization.
    function _award(uint256 round, bytes32 scheme, Entry[] calldata grants, Entry[] calldata penalties) private {
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
        _chargePenalties(round, penalties);
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

    /// @notice Most credits all awards of one round may burn from one member.
    /// @return The cap in the token's smallest unit.
    function maxPenaltyPerRound() external view returns (uint256) {
        return _maxPenaltyPerRound;
    }

    /// @notice Penalties asked from `account` for `round` so far, all schemes together.
    /// @param round The round.
    /// @param account The member.
    /// @return The amount in the token's smallest unit.
    function penalizedInRound(uint256 round, address account) external view returns (uint256) {
        return _penalizedInRound[round][account];
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

    /// @dev Adds each penalty to its member's total for the round, within the cap. A penalty
    /// counts in full even where the balance was lower: asking is what the cap bounds.
    function _chargePenalties(uint256 round, Entry[] calldata penalties) private {
        for (uint256 i = 0; i < penalties.length; ++i) {
            address account = penalties[i].account;
            uint256 charged = _penalizedInRound[round][account];
            uint256 remaining = _maxPenaltyPerRound - charged;
            if (penalties[i].amount > remaining) {
                revert IncentiveDistributorPenaltyCapExceeded(round, account, penalties[i].amount, remaining);
            }
            _penalizedInRound[round][account] = charged + penalties[i].amount;
        }
    }

    /// @dev Entry `i` of `entries`: strictly after entry `i - 1`, with a nonzero amount.
    function _checkEntry(Entry[] calldata entries, uint256 i) private pure returns (address account) {
        account = entries[i].account;
        if (i > 0 && account <= entries[i - 1].account) revert IncentiveDistributorAccountsNotSorted(i);
        if (entries[i].amount == 0) revert IncentiveDistributorZeroAmount(account);
    }
}
