// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommitteeDraw} from "./CommitteeDraw.sol";
import {IContributionCredit} from "./IContributionCredit.sol";
import {IHospitalRegistry} from "./IHospitalRegistry.sol";
import {IRoundBeacon} from "./IRoundBeacon.sol";

/**
 * @title RoundLedger
 * @notice The public record of medmesh training rounds. Active members of the registry open a
 * round, commit the hash of their (protected) model update with its sample count and privacy
 * spend, then attest to the aggregate they computed together with the set of updates they
 * accepted, and may record which updates they rejected and why. When more than
 * `quorumNumerator / quorumDenominator` of the round's members attest to the same (aggregate
 * hash, accepted set) pair, the round can be finalized; settling it then mints contribution
 * credits to the accepted contributors (by samples or in equal shares) and, when configured,
 * slashes credits of the committers left out. A round without quorum by its attestation
 * deadline can be failed, so the next one can open.
 *
 * Membership (the "fixed membership" rule): a round's members are the registry's Active members
 * when it opened (`HospitalRegistry.membership` / `tenure`, O(1) per check); only they commit
 * and attest in it, and its quorum is over their number, whatever happens in the registry
 * while it runs. A vote counts at finalization only if its member is still Active then: a
 * member that leaves the Active set mid-round (suspended, revoked, exited) must have its vote
 * struck (`strikeVote`, by anyone) and, until every such departure is struck, `finalize`
 * counts each of them as a vote lost by the leading pair. An admission mid-round takes effect
 * from the next round. See docs/ledger-consensus.md for the threat model.
 *
 * Self-reported figures are bounded: a commitment's sample count by the cohort the committer's
 * admission endorsed (HospitalRegistry), its cumulative epsilon by the privacy budget the
 * member declared before its first commitment (never decreasing, never above the budget,
 * never 0 under a DP budget); and no member may reject an update in its own accepted set.
 * @dev One round is open at a time. Each round's commitments get an index in commit order; an
 * accepted set is attested as a bitmask over those indexes (bit i: the i-th committer), so a
 * round takes at most `MAX_COMMITTERS` commitments and an attestation costs O(1) gas in the
 * membership. Gas: a tally is one slot (mask and votes); the aggregate hash of a pair is not
 * stored per pair but in the round, for the leading pair only (the slot is made nonzero at
 * opening so that attestations only ever rewrite it); every attestation's aggregate hash is in
 * its event. `finalize` is O(1); the O(|accepted|) minting and slashing is in `settle`, which
 * `openRound` also runs for the previous round if nobody did. An accepted contributor revoked
 * before settlement is still credited for the update it committed.
 *
 * Committee (issue 19): with a `committeeSize` k below a round's member count, only the k
 * members the round's beacon draws attest (`CommitteeDraw` over the registry's Active slots,
 * keyed by keccak256(abi.encode(beacon value, round)); O(1) gas per check), and the quorum is
 * over k instead of the member count. `committeeSize` 0 is the whole consortium. See
 * docs/committee.md.
 */
contract RoundLedger {
    /// @notice Life cycle of a round.
    enum RoundStatus {
        None,
        Open,
        Finalized,
        Failed
    }

    /// @notice How a finalized round's credits are split among its accepted contributors.
    enum CreditScheme {
        BySamples,
        Equal
    }

    /// @notice A round as stored (fields ordered so that `commitUpdate` and `attest` each
    /// rewrite a single packed slot).
    /// @param opener The member that opened the round.
    /// @param openedAt Timestamp of `openRound`.
    /// @param status Current status.
    /// @param settled Whether a finalized round's credits were minted and slashes applied.
    /// @param struckVotes Attestations struck because their member left the Active set.
    /// @param leader An attester whose vote pair has the most votes (first to lead wins ties).
    /// @param attestDeadline Last timestamp at which attestations are accepted (without quorum
    /// by then, the round can be failed).
    /// @param attestCount Number of attestations.
    /// @param leaderVotes Votes of the leading pair.
    /// @param commitDeadline Last timestamp at which commitments are accepted.
    /// @param commitCount Number of commitments.
    /// @param memberCount The round's members: the registry's Active count when it opened (the
    /// quorum's denominator).
    /// @param membershipEpoch The registry's membership epoch when it opened.
    /// @param departuresAtOpen The registry's departure count when it opened.
    /// @param struck Departures of this round struck so far (`strikeVote`).
    /// @param aggregateHash The leading pair's aggregate hash while open (1 before any
    /// attestation), the finalized aggregate hash once finalized.
    struct Round {
        address opener;
        uint64 openedAt;
        RoundStatus status;
        bool settled;
        uint16 struckVotes;
        address leader;
        uint64 attestDeadline;
        uint16 attestCount;
        uint16 leaderVotes;
        uint64 commitDeadline;
        uint16 commitCount;
        uint32 memberCount;
        uint64 membershipEpoch;
        uint64 departuresAtOpen;
        uint16 struck;
        bytes32 aggregateHash;
    }

    /// @notice A member's commitment to its update in a round.
    /// @param updateHash Hash of the update as gossiped.
    /// @param samples Training samples behind the update (weights the credit split); nonzero.
    /// @param epsilonMicros The update's differential-privacy epsilon, times 10^6.
    /// @param mode Protection mode of the update (defined by the node software).
    /// @param index Position in the round's commit order (bit index in accepted sets).
    struct Commitment {
        bytes32 updateHash;
        uint64 samples;
        uint64 epsilonMicros;
        uint8 mode;
        uint8 index;
    }

    /// @notice A member's attestation in a round, as stored.
    /// @param voteKey keccak256(abi.encode(aggregateHash, acceptedMask)); zero if not attested.
    /// @param accepted The contributors accepted into the aggregate, ascending.
    /// @param withLeader Whether it is the leading pair's vote (for a finalized round: whether
    /// it agrees with the finalized pair; false is a dissent).
    /// @param acceptedMask The accepted set as attested: bit i is the i-th committer.
    /// @param struck Whether the vote was struck (its member left the Active set mid-round).
    struct Attestation {
        bytes32 voteKey;
        address[] accepted;
        bool withLeader;
        uint256 acceptedMask;
        bool struck;
    }

    /// @notice The ledger's settings, fixed at deployment.
    /// @param commitWindow Seconds after opening during which commitments are accepted.
    /// @param attestWindow Seconds after the commit deadline during which attestations are accepted.
    /// @param creditPerRound Credits (smallest unit) split among a finalized round's accepted contributors.
    /// @param quorumNumerator Quorum numerator (e.g. 2).
    /// @param quorumDenominator Quorum denominator (e.g. 3).
    /// @param creditScheme A `CreditScheme` value.
    /// @param slashPerRejection Credits burned from each committer left out of a finalized
    /// accepted set (0: slashing off).
    struct Config {
        uint64 commitWindow;
        uint64 attestWindow;
        uint256 creditPerRound;
        uint256 quorumNumerator;
        uint256 quorumDenominator;
        uint8 creditScheme;
        uint256 slashPerRejection;
    }

    /// @dev A round's committee as fixed at opening: its size and the Active slots it is drawn
    /// from (`HospitalRegistry.slotCount`). One slot; none without a committee.
    struct Committee {
        uint32 size;
        uint64 domain;
    }

    /// @notice A member's privacy budget for the campaign (the ledger's lifetime), declared once
    /// before its first commitment. Fixed point: `epsilonMicros` = ε·10^6, `deltaAtto` = δ·10^18,
    /// `noiseMicros` = σ·10^6 (DP-SGD noise multiplier), `clipMicros` = C·10^6 (per-sample L2
    /// clip norm); `accountant` names the accountant in right-padded ASCII, at most 24 bytes
    /// ("rdp", "prv"; "none" without DP). A DP budget has ε > 0, 0 < δ < 1, σ > 0 and C > 0; a budget with ε = 0
    /// declares a campaign without DP (δ = σ = 0), whose commitments must all report ε = 0.
    /// @param epsilonMicros The campaign's ε budget, times 10^6.
    /// @param deltaAtto The campaign's δ, times 10^18.
    /// @param noiseMicros The noise multiplier σ, times 10^6.
    /// @param clipMicros The clip norm C, times 10^6.
    /// @param accountant The accountant's name, right-padded ASCII; nonzero.
    struct PrivacyBudget {
        uint64 epsilonMicros;
        uint64 deltaAtto;
        uint64 noiseMicros;
        uint64 clipMicros;
        bytes24 accountant;
    }

    /// @dev A budget as stored, with the member's last reported cumulative ε beside the
    /// accountant's name: checking and recording a commitment's ε rewrites one warm slot.
    struct BudgetRecord {
        uint64 epsilonMicros;
        uint64 deltaAtto;
        uint64 noiseMicros;
        uint64 clipMicros;
        bytes24 accountant;
        uint64 spentMicros;
    }

    /// @dev Votes for one (aggregate hash, accepted set) pair: one slot.
    struct Tally {
        uint224 acceptedMask;
        uint32 votes;
    }

    /// @notice Most commitments a round takes (the width of an accepted-set bitmask).
    uint256 public constant MAX_COMMITTERS = 224;
    /// @dev The aggregate hash slot's value before any attestation (nonzero: rewrites are cheap).
    bytes32 private constant _NO_AGGREGATE = bytes32(uint256(1));

    IHospitalRegistry private immutable _registry;
    IContributionCredit private immutable _credit;
    uint64 private immutable _commitWindow;
    uint64 private immutable _attestWindow;
    uint256 private immutable _creditPerRound;
    uint256 private immutable _quorumNumerator;
    uint256 private immutable _quorumDenominator;
    CreditScheme private immutable _creditScheme;
    uint256 private immutable _slashPerRejection;
    address private immutable _deployer;
    IRoundBeacon private _beacon;
    uint32 private _committeeSize;

    uint256 private _currentRound;
    mapping(uint256 round => Round) private _rounds;
    mapping(uint256 round => mapping(address account => Commitment)) private _commitments;
    mapping(uint256 round => mapping(uint256 index => address)) private _committers;
    mapping(uint256 round => mapping(address account => bytes32 voteKey)) private _votes;
    mapping(uint256 round => mapping(bytes32 voteKey => Tally)) private _tallies;
    mapping(uint256 round => mapping(address reporter => mapping(address account => uint8 reason))) private _rejected;
    mapping(uint256 round => mapping(address account => uint256)) private _rejectionCount;
    mapping(uint256 round => mapping(address account => uint64 activeUntil)) private _struckAt;
    mapping(uint256 round => mapping(address reporter => uint224 indexes)) private _rejectedMask;
    mapping(address account => BudgetRecord) private _budgets;
    mapping(uint256 round => Committee) private _committees;

    /// @notice `account` is not an Active member of the registry.
    /// @param account The caller.
    error RoundLedgerNotActiveMember(address account);

    /// @notice `account` is not a member of `round` in good standing: it was not Active when
    /// the round opened (admitted later), or it is not Active now.
    /// @param round The round.
    /// @param account The caller.
    error RoundLedgerNotRoundMember(uint256 round, address account);

    /// @notice `account` has no departure to strike in `round`: it is Active, it left before
    /// the round opened, or its departure was already struck.
    /// @param round The round.
    /// @param account The account named.
    error RoundLedgerNothingToStrike(uint256 round, address account);

    /// @notice The leading pair of `round` has quorum only if votes of members that left the
    /// Active set count: strike the `pending` departures first (`strikeVote`).
    /// @param round The round.
    /// @param pending Departures since the round opened that are not struck yet.
    error RoundLedgerDeparturesNotStruck(uint256 round, uint256 pending);

    /// @notice `round` is not finalized (or it is already settled).
    /// @param round The round.
    /// @param status Its status.
    /// @param settled Whether it is settled.
    error RoundLedgerNotSettleable(uint256 round, RoundStatus status, bool settled);

    /// @notice The quorum fraction must satisfy 0 < numerator < denominator and be at least 1/2.
    /// @param numerator The numerator given.
    /// @param denominator The denominator given.
    error RoundLedgerInvalidQuorum(uint256 numerator, uint256 denominator);

    /// @notice A commit or attest window of zero seconds.
    /// @param commitWindow The commit window given.
    /// @param attestWindow The attest window given.
    error RoundLedgerInvalidWindows(uint64 commitWindow, uint64 attestWindow);

    /// @notice A round cannot open while round `round` is still open.
    /// @param round The open round.
    error RoundLedgerRoundStillOpen(uint256 round);

    /// @notice Round `round` is not open (it is finished, or it never opened).
    /// @param round The round named by the caller.
    /// @param status Its status.
    error RoundLedgerRoundNotOpen(uint256 round, RoundStatus status);

    /// @notice The commit window of `round` closed at `deadline`.
    /// @param round The round.
    /// @param deadline Its commit deadline.
    error RoundLedgerCommitClosed(uint256 round, uint64 deadline);

    /// @notice `account` already committed in `round`.
    /// @param round The round.
    /// @param account The member.
    error RoundLedgerAlreadyCommitted(uint256 round, address account);

    /// @notice A commitment needs a nonzero update hash and a nonzero sample count.
    /// @param round The round.
    /// @param updateHash The update hash given.
    /// @param samples The sample count given.
    error RoundLedgerInvalidCommitment(uint256 round, bytes32 updateHash, uint64 samples);

    /// @notice `round` already holds `MAX_COMMITTERS` commitments.
    /// @param round The round.
    /// @param limit The limit.
    error RoundLedgerRoundFull(uint256 round, uint256 limit);

    /// @notice The attestation window of `round` closed at `deadline`.
    /// @param round The round.
    /// @param deadline Its attestation deadline.
    error RoundLedgerAttestClosed(uint256 round, uint64 deadline);

    /// @notice The chain head an attester says it saw is not block `seenNumber` of this chain
    /// (or is too old for `blockhash`, 256 blocks).
    /// @param seenNumber The block number given.
    /// @param seenHead The block hash given.
    error RoundLedgerUnknownHead(uint256 seenNumber, bytes32 seenHead);

    /// @notice `account` already attested in `round`.
    /// @param round The round.
    /// @param account The member.
    error RoundLedgerAlreadyAttested(uint256 round, address account);

    /// @notice An attestation needs a nonzero aggregate hash and a nonempty accepted set.
    /// @param round The round.
    /// @param aggregateHash The aggregate hash given.
    /// @param acceptedMask The accepted set given.
    error RoundLedgerInvalidAttestation(uint256 round, bytes32 aggregateHash, uint256 acceptedMask);

    /// @notice The accepted set names a commit index at or above `commitCount`.
    /// @param round The round.
    /// @param acceptedMask The accepted set given.
    /// @param commitCount Commitments in the round.
    error RoundLedgerAcceptedNotCommitted(uint256 round, uint256 acceptedMask, uint256 commitCount);

    /// @notice An accepted address made no commitment in `round`.
    /// @param round The round.
    /// @param account The address without a commitment.
    error RoundLedgerNotCommitted(uint256 round, address account);

    /// @notice No vote pair of `round` has quorum: `votes` of its `memberCount` members.
    /// @param round The round.
    /// @param votes Votes of the leading pair that count (members still Active).
    /// @param memberCount The round's members (Active when it opened).
    error RoundLedgerQuorumNotReached(uint256 round, uint256 votes, uint256 memberCount);

    /// @notice A vote pair of `round` has quorum, so it must be finalized, not failed.
    /// @param round The round.
    error RoundLedgerQuorumReached(uint256 round);

    /// @notice `round` can be failed only after its attestation deadline `deadline`.
    /// @param round The round.
    /// @param deadline Its attestation deadline.
    error RoundLedgerAttestStillOpen(uint256 round, uint64 deadline);

    /// @notice `accounts` and `reasons` differ in length.
    /// @param accounts Length of the account list.
    /// @param reasons Length of the reason list.
    error RoundLedgerLengthMismatch(uint256 accounts, uint256 reasons);

    /// @notice A rejection needs a nonzero reason and another member's update.
    /// @param round The round.
    /// @param account The rejected account given.
    /// @param reason The reason code given.
    error RoundLedgerInvalidRejection(uint256 round, address account, uint8 reason);

    /// @notice `reporter` already recorded a rejection of `account`'s update in `round`.
    /// @param round The round.
    /// @param reporter The member that rejected it.
    /// @param account The rejected member.
    error RoundLedgerAlreadyRejected(uint256 round, address reporter, address account);

    /// @notice `reporter` cannot both accept and reject `account`'s update in `round`.
    /// @param round The round.
    /// @param reporter The member whose attestation and rejections contradict each other.
    /// @param account The member whose update it both accepted and rejected.
    error RoundLedgerContradictoryRejection(uint256 round, address reporter, address account);

    /// @notice `account` claims `samples` training samples, more than its endorsed `cohort`.
    /// @param round The round.
    /// @param account The committing member.
    /// @param samples The samples claimed.
    /// @param cohort The cohort it declared at registration (HospitalRegistry).
    error RoundLedgerSamplesAboveCohort(uint256 round, address account, uint64 samples, uint64 cohort);

    /// @notice `account` has not declared its privacy budget (`declarePrivacyBudget`).
    /// @param account The member.
    error RoundLedgerBudgetNotDeclared(address account);

    /// @notice `account` already declared its privacy budget; it cannot change.
    /// @param account The member.
    error RoundLedgerBudgetAlreadyDeclared(address account);

    /// @notice The budget is neither a DP budget (ε > 0, 0 < δ < 1, σ > 0, C > 0) nor a
    /// no-DP one (ε = δ = σ = 0), or names no accountant (fixed point as in `PrivacyBudget`).
    /// @param epsilonMicros ε·10^6 given.
    /// @param deltaAtto δ·10^18 given.
    /// @param noiseMicros σ·10^6 given.
    /// @param clipMicros C·10^6 given.
    /// @param accountant The accountant given.
    error RoundLedgerInvalidBudget(
        uint64 epsilonMicros, uint64 deltaAtto, uint64 noiseMicros, uint64 clipMicros, bytes24 accountant
    );

    /// @notice `account` reports a cumulative ε below the `previousMicros` it reported before.
    /// @param round The round.
    /// @param account The member.
    /// @param epsilonMicros The ε·10^6 reported now.
    /// @param previousMicros Its last reported ε·10^6.
    error RoundLedgerEpsilonDecreased(uint256 round, address account, uint64 epsilonMicros, uint64 previousMicros);

    /// @notice `account` reports a cumulative ε above its declared budget.
    /// @param round The round.
    /// @param account The member.
    /// @param epsilonMicros The ε·10^6 reported.
    /// @param budgetMicros Its declared budget, ε·10^6.
    error RoundLedgerEpsilonOverBudget(uint256 round, address account, uint64 epsilonMicros, uint64 budgetMicros);

    /// @notice `account` declared a DP budget but reports ε = 0: DP-SGD training spends ε > 0.
    /// @param round The round.
    /// @param account The member.
    error RoundLedgerZeroEpsilon(uint256 round, address account);

    /// @notice No round `round` was ever opened, so nothing can be recorded about it.
    /// @param round The round given.
    error RoundLedgerUnknownRound(uint256 round);

    /// @notice An alert record needs a nonzero kind and a nonzero hash of its body.
    /// @param round The round.
    /// @param kind The kind given.
    /// @param bodyHash The body hash given.
    error RoundLedgerInvalidAlert(uint256 round, bytes32 kind, bytes32 bodyHash);

    /// @notice `account` does not sit on the committee of `round`: its seat is `seat`, at or
    /// above the committee size.
    /// @param round The round.
    /// @param account The caller.
    /// @param seat Its seat in the round's draw.
    error RoundLedgerNotCommitteeMember(uint256 round, address account, uint256 seat);

    /// @notice The committee of `round` is not drawn: its beacon is not `Ready` (still
    /// revealing, or failed), or no beacon is bound.
    /// @param round The round.
    error RoundLedgerCommitteeNotDrawn(uint256 round);

    /// @notice Only the deployer binds the beacon, once, to a beacon that serves this ledger.
    /// @param caller The caller.
    /// @param beacon The beacon given.
    error RoundLedgerInvalidBeaconBinding(address caller, address beacon);

    /// @notice Only the deployer sets the committee size, before the first round opens and
    /// after the beacon is bound.
    /// @param caller The caller.
    error RoundLedgerCommitteeFixed(address caller);

    /// @notice The credit scheme value is unknown.
    /// @param scheme The value given.
    error RoundLedgerInvalidScheme(uint8 scheme);

    /// @notice The beacon that draws committees was bound.
    /// @param beacon The beacon.
    event BeaconBound(address indexed beacon);

    /// @notice The committee size was set (0: every member attests).
    /// @param size Attesters drawn per round.
    event CommitteeSizeSet(uint32 size);

    /// @notice `opener` opened round `round`.
    /// @param round The new round number.
    /// @param opener The member that opened it.
    /// @param commitDeadline Last timestamp for commitments.
    /// @param attestDeadline Last timestamp for attestations.
    /// @param memberCount The round's members (the registry's Active count now).
    /// @param membershipEpoch The registry's membership epoch now.
    event RoundOpened(
        uint256 indexed round,
        address indexed opener,
        uint64 commitDeadline,
        uint64 attestDeadline,
        uint32 memberCount,
        uint64 membershipEpoch
    );

    /// @notice `account` committed `updateHash` in `round`.
    /// @param round The round.
    /// @param account The member.
    /// @param updateHash Hash of its update.
    /// @param samples Training samples behind the update.
    /// @param epsilonMicros Differential-privacy epsilon times 10^6.
    /// @param mode Protection mode of the update.
    /// @param index Position in the round's commit order.
    event UpdateCommitted(
        uint256 indexed round,
        address indexed account,
        bytes32 indexed updateHash,
        uint64 samples,
        uint64 epsilonMicros,
        uint8 mode,
        uint8 index
    );

    /// @notice `account` declared its privacy budget for the campaign (fixed point as in
    /// `PrivacyBudget`).
    /// @param account The member.
    /// @param epsilonMicros ε·10^6 (0: no DP).
    /// @param deltaAtto δ·10^18.
    /// @param noiseMicros Noise multiplier σ·10^6.
    /// @param clipMicros Clip norm C·10^6.
    /// @param accountant The accountant's name, right-padded ASCII.
    event PrivacyBudgetDeclared(
        address indexed account,
        uint64 epsilonMicros,
        uint64 deltaAtto,
        uint64 noiseMicros,
        uint64 clipMicros,
        bytes24 accountant
    );

    /// @notice `account` attested to `aggregateHash` built from the committers in
    /// `acceptedMask` in `round`.
    /// @param round The round.
    /// @param account The attesting member.
    /// @param aggregateHash The aggregate hash.
    /// @param voteKey keccak256(abi.encode(aggregateHash, acceptedMask)).
    /// @param acceptedMask The accepted contributors: bit i is the committer of index i.
    /// @param seenNumber The number of the chain head the member saw when it attested.
    /// @param seenHead That block's hash (checked against `blockhash`).
    event AggregateAttested(
        uint256 indexed round,
        address indexed account,
        bytes32 indexed aggregateHash,
        bytes32 voteKey,
        uint256 acceptedMask,
        uint256 seenNumber,
        bytes32 seenHead
    );

    /// @notice The vote of `account` in `round` no longer counts: it left the Active set
    /// mid-round (`voteKey` zero if it had not attested).
    /// @param round The round.
    /// @param account The departed member.
    /// @param voteKey Its vote pair (zero: no vote).
    /// @param striker The caller.
    event VoteStruck(uint256 indexed round, address indexed account, bytes32 voteKey, address striker);

    /// @notice `round` was finalized on `aggregateHash` by `finalizer`.
    /// @param round The round.
    /// @param aggregateHash The agreed aggregate hash.
    /// @param finalizer The member that called `finalize`.
    /// @param voteKey The winning vote pair.
    /// @param votes Votes for it that counted (members still Active).
    /// @param memberCount The round's members (Active when it opened).
    /// @param acceptedMask The credited contributors: bit i is the committer of index i.
    event RoundFinalized(
        uint256 indexed round,
        bytes32 indexed aggregateHash,
        address indexed finalizer,
        bytes32 voteKey,
        uint256 votes,
        uint256 memberCount,
        uint256 acceptedMask
    );

    /// @notice The credits of finalized `round` were minted (and slashes applied) by `settler`.
    /// @param round The round.
    /// @param settler The caller (or the opener of the next round).
    /// @param minted Credits minted in all.
    event RoundSettled(uint256 indexed round, address indexed settler, uint256 minted);

    /// @notice `reporter` rejected the update `account` committed in `round`, for `reason`
    /// (a code defined by the node software: hash mismatch, missing blob, bad seal, ...).
    /// @param round The round.
    /// @param account The member whose update was rejected.
    /// @param reporter The member that rejected it.
    /// @param reason The reason code (nonzero).
    event UpdateRejected(uint256 indexed round, address indexed account, address indexed reporter, uint8 reason);

    /// @notice `account` attested `voteKey` in finalized `round`, which finalized on `winningKey`.
    /// @param round The round.
    /// @param account The dissenting member.
    /// @param voteKey Its vote pair.
    /// @param winningKey The finalized vote pair.
    event DissentRecorded(uint256 indexed round, address indexed account, bytes32 voteKey, bytes32 winningKey);

    /// @notice `amount` credits of `account` were slashed in `round`: its committed update was
    /// left out of the finalized accepted set.
    /// @param round The round.
    /// @param account The member.
    /// @param amount The credits burned (its balance, if that was lower than the penalty).
    event ContributorSlashed(uint256 indexed round, address indexed account, uint256 amount);

    /// @notice `reporter`'s local monitoring raised an alert of `kind` about `round`'s model or
    /// updates; the alert's JSON body stays with the reporter, `bodyHash` (keccak-256) binds it.
    /// @param round The round.
    /// @param reporter The member that raised it (the transaction's signer).
    /// @param kind The alert kind, as a right-padded ASCII string ("accuracy_drop", ...).
    /// @param bodyHash keccak-256 of the alert's canonical JSON body.
    event AlertRecorded(uint256 indexed round, address indexed reporter, bytes32 indexed kind, bytes32 bodyHash);

    /// @notice `round` failed for lack of quorum; `caller` closed it.
    /// @param round The round.
    /// @param caller The member that called `failRound`.
    /// @param leaderVotes Votes of the leading pair that counted.
    /// @param memberCount The round's members (Active when it opened).
    event RoundFailed(uint256 indexed round, address indexed caller, uint256 leaderVotes, uint256 memberCount);

    /// @dev Restricts a function to Active members of the registry.
    modifier onlyActiveMember() {
        if (!_registry.isActive(msg.sender)) revert RoundLedgerNotActiveMember(msg.sender);
        _;
    }

    /// @dev Restricts a function to members of `round` (Active when it opened) still Active.
    modifier onlyRoundMember(uint256 round) {
        _checkRoundMember(round);
        _;
    }

    /// @param registry_ The hospital registry whose Active members take part.
    /// @param credit_ The credit token this ledger mints (it must be made its minter).
    /// @param config_ The ledger's settings (see `Config`).
    constructor(IHospitalRegistry registry_, IContributionCredit credit_, Config memory config_) {
        uint256 num = config_.quorumNumerator;
        uint256 den = config_.quorumDenominator;
        if (num == 0 || num >= den || num * 2 < den) revert RoundLedgerInvalidQuorum(num, den);
        if (config_.commitWindow == 0 || config_.attestWindow == 0) {
            revert RoundLedgerInvalidWindows(config_.commitWindow, config_.attestWindow);
        }
        if (config_.creditScheme > uint8(type(CreditScheme).max)) revert RoundLedgerInvalidScheme(config_.creditScheme);
        _registry = registry_;
        _credit = credit_;
        _commitWindow = config_.commitWindow;
        _attestWindow = config_.attestWindow;
        _creditPerRound = config_.creditPerRound;
        _quorumNumerator = num;
        _quorumDenominator = den;
        _creditScheme = CreditScheme(config_.creditScheme);
        _slashPerRejection = config_.slashPerRejection;
        _deployer = msg.sender;
    }

    /// @notice Binds the beacon whose per-round values draw the committees; once, by the
    /// deployer, to a beacon serving this ledger.
    /// @param beacon_ The RoundBeacon.
    function bindBeacon(IRoundBeacon beacon_) external {
        if (
            msg.sender != _deployer || address(_beacon) != address(0) || address(beacon_) == address(0)
                || beacon_.ledger() != address(this)
        ) revert RoundLedgerInvalidBeaconBinding(msg.sender, address(beacon_));
        _beacon = beacon_;
        emit BeaconBound(address(beacon_));
    }

    /// @notice Sets how many members each round's beacon draws to attest (0, or at least a
    /// round's member count: every member, the default); by the deployer, before the first
    /// round opens, once the beacon is bound.
    /// @param size The committee size.
    function setCommitteeSize(uint32 size) external {
        if (msg.sender != _deployer || _currentRound != 0 || address(_beacon) == address(0)) {
            revert RoundLedgerCommitteeFixed(msg.sender);
        }
        _committeeSize = size;
        emit CommitteeSizeSet(size);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice Opens the next round, fixing its membership: the registry's Active members now.
    /// Active members only; no other round may be open. Settles the previous round first if it
    /// was finalized and nobody settled it.
    /// @return round The new round number (the first round is 1).
    function openRound() external onlyActiveMember returns (uint256 round) {
        uint256 previous = _currentRound;
        Round storage p = _rounds[previous];
        if (p.status == RoundStatus.Open) revert RoundLedgerRoundStillOpen(previous);
        round = previous + 1;
        _currentRound = round;
        uint64 commitDeadline = uint64(block.timestamp) + _commitWindow;
        uint64 attestDeadline = commitDeadline + _attestWindow;
        IHospitalRegistry.Membership memory m = _registry.membership();
        Round storage r = _rounds[round];
        r.opener = msg.sender;
        r.openedAt = uint64(block.timestamp);
        r.status = RoundStatus.Open;
        r.commitDeadline = commitDeadline;
        r.attestDeadline = attestDeadline;
        r.memberCount = uint32(m.active);
        r.membershipEpoch = m.epoch;
        r.departuresAtOpen = m.departures;
        r.aggregateHash = _NO_AGGREGATE;
        uint32 k = _committeeSize;
        if (k != 0 && k < m.active) _committees[round] = Committee(k, _registry.slotCount());
        emit RoundOpened(round, msg.sender, commitDeadline, attestDeadline, uint32(m.active), m.epoch);
        // the previous round's credits, if nobody settled them (calls the credit token: last)
        if (p.status == RoundStatus.Finalized && !p.settled) _settle(previous, p);
    }

    /// @notice Declares the caller's privacy budget for the campaign: once, before its first
    /// commitment (see `PrivacyBudget`). Every later commitment's cumulative ε is checked
    /// against it. Active members only.
    /// @param budget The budget.
    function declarePrivacyBudget(PrivacyBudget calldata budget) external onlyActiveMember {
        if (_budgets[msg.sender].accountant != bytes24(0)) revert RoundLedgerBudgetAlreadyDeclared(msg.sender);
        bool dp = budget.epsilonMicros != 0;
        bool valid = budget.accountant != bytes24(0)
            && (dp
                ? budget.deltaAtto != 0 && budget.deltaAtto < 1e18 && budget.noiseMicros != 0 && budget.clipMicros != 0
                : budget.deltaAtto == 0 && budget.noiseMicros == 0);
        if (!valid) {
            revert RoundLedgerInvalidBudget(
                budget.epsilonMicros, budget.deltaAtto, budget.noiseMicros, budget.clipMicros, budget.accountant
            );
        }
        _budgets[msg.sender] = BudgetRecord(
            budget.epsilonMicros, budget.deltaAtto, budget.noiseMicros, budget.clipMicros, budget.accountant, 0
        );
        emit PrivacyBudgetDeclared(
            msg.sender, budget.epsilonMicros, budget.deltaAtto, budget.noiseMicros, budget.clipMicros, budget.accountant
        );
    }

    /// @notice Commits the caller's update for the open round, once per member of the round. The
    /// sample count is bounded by the cohort the caller's admission endorsed, and `epsilonMicros`
    /// is the caller's cumulative spend for the campaign: never below what it reported before,
    /// never above its declared budget, and nonzero under a DP budget.
    /// @param round The open round.
    /// @param updateHash Hash of the update; nonzero.
    /// @param samples Training samples behind it; nonzero, at most the caller's cohort.
    /// @param epsilonMicros Cumulative differential-privacy epsilon times 10^6.
    /// @param mode Protection mode of the update.
    function commitUpdate(
        uint256 round,
        bytes32 updateHash,
        uint64 samples,
        uint64 epsilonMicros,
        uint8 mode
    ) external onlyRoundMember(round) {
        Round storage r = _openRound(round);
        if (block.timestamp > r.commitDeadline) revert RoundLedgerCommitClosed(round, r.commitDeadline);
        if (updateHash == bytes32(0) || samples == 0) revert RoundLedgerInvalidCommitment(round, updateHash, samples);
        Commitment storage c = _commitments[round][msg.sender];
        if (c.samples != 0) revert RoundLedgerAlreadyCommitted(round, msg.sender);
        uint16 index = r.commitCount;
        if (index >= MAX_COMMITTERS) revert RoundLedgerRoundFull(round, MAX_COMMITTERS);
        uint64 cohort = _registry.cohortOf(msg.sender);
        if (samples > cohort) revert RoundLedgerSamplesAboveCohort(round, msg.sender, samples, cohort);
        _spend(round, epsilonMicros);

        c.updateHash = updateHash;
        c.samples = samples;
        c.epsilonMicros = epsilonMicros;
        c.mode = mode;
        c.index = uint8(index);
        _committers[round][index] = msg.sender;
        r.commitCount = index + 1;
        emit UpdateCommitted(round, msg.sender, updateHash, samples, epsilonMicros, mode, uint8(index));
    }

    /// @notice Attests, once per member of the round, that the aggregate of the round's updates
    /// from the committers in `acceptedMask` hashes to `aggregateHash`. A vote counts for the
    /// pair (aggregateHash, acceptedMask). A member that attests after the quorum already
    /// finalized the round is still recorded (agreement, or dissent with a `DissentRecorded`
    /// event) until the attestation deadline or until the next round opens, whichever comes
    /// first; a late vote never changes the outcome. O(1) gas in the membership.
    /// @param round The open round, or the just-finalized current round.
    /// @param aggregateHash Hash of the aggregate; nonzero.
    /// @param acceptedMask Contributors accepted into the aggregate: bit i is the committer of
    /// index i (see `UpdateCommitted`); nonzero, no bit at or above the commit count.
    /// @param seenNumber The number of the latest block the member saw before attesting.
    /// @param seenHead That block's hash: a member's signed attestation anchors the history it
    /// saw, so an auditor holding it detects a rewritten chain.
    function attest(uint256 round, bytes32 aggregateHash, uint256 acceptedMask, uint256 seenNumber, bytes32 seenHead)
        external
        onlyRoundMember(round)
    {
        if (seenHead == bytes32(0) || blockhash(seenNumber) != seenHead) {
            revert RoundLedgerUnknownHead(seenNumber, seenHead);
        }
        Round storage r = _attestableRound(round);
        _checkCommittee(round);
        if (aggregateHash == bytes32(0) || aggregateHash == _NO_AGGREGATE || acceptedMask == 0) {
            revert RoundLedgerInvalidAttestation(round, aggregateHash, acceptedMask);
        }
        if (_votes[round][msg.sender] != bytes32(0)) revert RoundLedgerAlreadyAttested(round, msg.sender);
        uint256 commitCount = r.commitCount;
        if (acceptedMask >> commitCount != 0) revert RoundLedgerAcceptedNotCommitted(round, acceptedMask, commitCount);
        _checkNotRejected(round, uint224(acceptedMask));

        bytes32 voteKey = keccak256(abi.encode(aggregateHash, acceptedMask));
        _votes[round][msg.sender] = voteKey;
        Tally storage t = _tallies[round][voteKey];
        uint32 votes = t.votes + 1;
        t.acceptedMask = uint224(acceptedMask); // < 2**commitCount <= 2**224, checked above
        t.votes = votes;
        r.attestCount += 1;
        // votes <= attestCount, which the checked increment above keeps within uint16
        bool open = r.status == RoundStatus.Open;
        if (open && votes > r.leaderVotes) {
            r.leaderVotes = uint16(votes);
            r.leader = msg.sender;
            r.aggregateHash = aggregateHash;
        }
        emit AggregateAttested(round, msg.sender, aggregateHash, voteKey, acceptedMask, seenNumber, seenHead);
        if (!open) {
            bytes32 winning = _votes[round][r.leader];
            if (voteKey != winning) emit DissentRecorded(round, msg.sender, voteKey, winning);
        }
    }

    /// @notice Strikes the vote of `account` from the open `round` because it left the Active
    /// set (suspended, revoked or exited) after the round opened; accounts for its departure
    /// even if it did not vote. Anyone may call it, once per departure. Until every departure
    /// since the round opened is struck, `finalize` counts each one as a lost vote.
    /// @param round The open round.
    /// @param account The departed member.
    function strikeVote(uint256 round, address account) external {
        Round storage r = _openRound(round);
        (uint64 activeSince, uint64 activeUntil) = _registry.tenure(account);
        uint64 previous = _struckAt[round][account];
        // left the Active set after the round opened (activeUntil > epoch), not yet struck for it
        if (activeSince == 0 || activeUntil <= r.membershipEpoch || activeUntil == previous) {
            revert RoundLedgerNothingToStrike(round, account);
        }
        _struckAt[round][account] = activeUntil;
        r.struck += 1;
        bytes32 voteKey = _votes[round][account];
        // a departed member attests no more in this round: its vote is removed at its first strike
        if (voteKey != bytes32(0) && previous == 0) {
            _tallies[round][voteKey].votes -= 1;
            r.struckVotes += 1;
            if (voteKey == _votes[round][r.leader]) r.leaderVotes -= 1;
        }
        emit VoteStruck(round, account, voteKey, msg.sender);
    }

    /// @notice Records that the caller rejected the updates of `accounts` in `round`, each for
    /// the matching reason code. Same window as `attest`; once per (reporter, account); never
    /// for an update in the caller's own attested accepted set (nor may the caller later
    /// attest a set that holds an update it rejected). With a committee, only its members
    /// receive the updates, so only they may reject one (as only they may attest).
    /// @param round The open round, or the just-finalized current round.
    /// @param accounts Members whose committed updates the caller rejected.
    /// @param reasons Nonzero reason codes, one per account.
    function recordRejections(uint256 round, address[] calldata accounts, uint8[] calldata reasons)
        external
        onlyActiveMember
    {
        _attestableRound(round);
        _checkCommittee(round);
        if (accounts.length != reasons.length) revert RoundLedgerLengthMismatch(accounts.length, reasons.length);
        uint224 accepted = _attestedMask(round, msg.sender);
        uint224 rejected = _rejectedMask[round][msg.sender];
        for (uint256 i = 0; i < accounts.length; ++i) {
            address account = accounts[i];
            uint8 reason = reasons[i];
            if (reason == 0 || account == msg.sender) revert RoundLedgerInvalidRejection(round, account, reason);
            if (_commitments[round][account].samples == 0) revert RoundLedgerNotCommitted(round, account);
            if (_rejected[round][msg.sender][account] != 0) {
                revert RoundLedgerAlreadyRejected(round, msg.sender, account);
            }
            uint224 bit = uint224(1) << _commitments[round][account].index;
            if (accepted & bit != 0) revert RoundLedgerContradictoryRejection(round, msg.sender, account);
            rejected |= bit;
            _rejected[round][msg.sender][account] = reason;
            _rejectionCount[round][account] += 1;
            emit UpdateRejected(round, account, msg.sender, reason);
        }
        _rejectedMask[round][msg.sender] = rejected;
    }

    /// @notice Finalizes the open round once its leading vote pair has quorum over the round's
    /// members, counting only votes of members still Active (see `strikeVote`). O(1) gas; the
    /// credits follow in `settle`.
    /// @param round The open round.
    function finalize(uint256 round) external onlyActiveMember {
        Round storage r = _openRound(round);
        (uint256 votes, uint256 pending) = _countedVotes(r);
        uint256 members = _voters(round, r);
        if (!_hasQuorum(votes, members)) {
            if (pending != 0 && _hasQuorum(r.leaderVotes, members)) revert RoundLedgerDeparturesNotStruck(round, pending);
            revert RoundLedgerQuorumNotReached(round, votes, members);
        }
        bytes32 voteKey = _votes[round][r.leader];
        r.status = RoundStatus.Finalized;
        emit RoundFinalized(
            round, r.aggregateHash, msg.sender, voteKey, votes, members, _tallies[round][voteKey].acceptedMask
        );
    }

    /// @notice Mints `creditPerRound` to the accepted contributors of finalized `round` (by the
    /// credit scheme) and, when slashing is on, burns `slashPerRejection` credits from each
    /// committer left out. Once per round; anyone may call it (`openRound` does, if nobody did).
    /// @dev Each share is rounded down, so fewer than |accepted| smallest units of
    /// `creditPerRound` stay unminted per round (dust that goes to nobody).
    /// @param round A finalized round.
    function settle(uint256 round) external {
        Round storage r = _rounds[round];
        if (r.status != RoundStatus.Finalized || r.settled) revert RoundLedgerNotSettleable(round, r.status, r.settled);
        _settle(round, r);
    }

    /// @notice Fails the open round after its attestation deadline when no pair has quorum,
    /// so the next round can open.
    /// @param round The open round.
    function failRound(uint256 round) external onlyActiveMember {
        Round storage r = _openRound(round);
        if (block.timestamp <= r.attestDeadline) revert RoundLedgerAttestStillOpen(round, r.attestDeadline);
        (uint256 votes,) = _countedVotes(r);
        uint256 voters = _voters(round, r);
        if (_hasQuorum(votes, voters)) revert RoundLedgerQuorumReached(round);
        r.status = RoundStatus.Failed;
        emit RoundFailed(round, msg.sender, votes, voters);
    }

    /// @notice Records, signed by the caller, that its local monitoring raised an alert about
    /// `round` (any round that was opened: alerts follow a round's end). Stores nothing; the
    /// `AlertRecorded` event is the record an auditor reads.
    /// @param round A round that was opened.
    /// @param kind The alert kind, nonzero.
    /// @param bodyHash keccak-256 of the alert's JSON body, nonzero.
    function recordAlert(uint256 round, bytes32 kind, bytes32 bodyHash) external onlyActiveMember {
        if (_rounds[round].status == RoundStatus.None) revert RoundLedgerUnknownRound(round);
        if (kind == bytes32(0) || bodyHash == bytes32(0)) revert RoundLedgerInvalidAlert(round, kind, bodyHash);
        emit AlertRecorded(round, msg.sender, kind, bodyHash);
    }

    // ------------------------------------------------------------------ views

    /// @notice The latest round number (0 before the first round opens).
    /// @return The round number.
    function currentRound() external view returns (uint256) {
        return _currentRound;
    }

    /// @notice Stored data of `round` (all zero with status None if it never opened).
    /// @param round The round.
    /// @return The round.
    function roundInfo(uint256 round) external view returns (Round memory) {
        return _rounds[round];
    }

    /// @notice The commitment of `account` in `round` (zero hash if none).
    /// @param round The round.
    /// @param account The member.
    /// @return The commitment.
    function commitment(uint256 round, address account) external view returns (Commitment memory) {
        return _commitments[round][account];
    }

    /// @notice The accounts that committed in `round`, in commit order.
    /// @param round The round.
    /// @return accounts The committers.
    function committers(uint256 round) external view returns (address[] memory accounts) {
        uint256 count = _rounds[round].commitCount;
        accounts = new address[](count);
        for (uint256 i = 0; i < count; ++i) {
            accounts[i] = _committers[round][i];
        }
    }

    /// @notice Every commitment of `round`, in commit order: what `committers` then
    /// `commitment` per committer return, in one call.
    /// @param round The round.
    /// @return accounts The committers.
    /// @return list Their commitments, in the same order.
    function commitmentsOf(uint256 round)
        external
        view
        returns (address[] memory accounts, Commitment[] memory list)
    {
        uint256 count = _rounds[round].commitCount;
        accounts = new address[](count);
        list = new Commitment[](count);
        for (uint256 i = 0; i < count; ++i) {
            address account = _committers[round][i];
            accounts[i] = account;
            list[i] = _commitments[round][account];
        }
    }

    /// @notice The attestation of `account` in `round` (zero vote key if none). Its aggregate
    /// hash is in its `AggregateAttested` event (and in `roundInfo` when `withLeader`).
    /// @param round The round.
    /// @param account The member.
    /// @return a The attestation.
    function attestation(uint256 round, address account) external view returns (Attestation memory a) {
        a.voteKey = _votes[round][account];
        if (a.voteKey != bytes32(0)) {
            uint224 mask = _tallies[round][a.voteKey].acceptedMask;
            a.acceptedMask = mask;
            a.accepted = _unmask(round, mask);
            // Two stored vote keys (hashes) compared in a view: not the balance or timestamp
            // equality the detector is for, and nothing an attacker can steer to a near miss.
            // slither-disable-next-line incorrect-equality
            a.withLeader = a.voteKey == _votes[round][_rounds[round].leader];
            a.struck = _struckAt[round][account] != 0;
        }
    }

    /// @notice Attestations in `round` that differ from the leading (for a finalized round:
    /// the finalized) pair.
    /// @param round The round.
    /// @return The number of dissenting attestations.
    function dissentCount(uint256 round) external view returns (uint256) {
        Round storage r = _rounds[round];
        if (r.attestCount == 0) return 0;
        return r.attestCount - r.struckVotes - _tallies[round][_votes[round][r.leader]].votes;
    }

    /// @notice Votes for the pair `voteKey` in `round`.
    /// @param round The round.
    /// @param voteKey keccak256(abi.encode(aggregateHash, accepted)).
    /// @return The number of votes.
    function votesFor(uint256 round, bytes32 voteKey) external view returns (uint256) {
        return _tallies[round][voteKey].votes;
    }

    /// @notice The reason code `reporter` gave for rejecting `account`'s update in `round`
    /// (0: none).
    /// @param round The round.
    /// @param reporter The member that rejected.
    /// @param account The rejected member.
    /// @return The reason code.
    function rejection(uint256 round, address reporter, address account) external view returns (uint8) {
        return _rejected[round][reporter][account];
    }

    /// @notice How many members rejected `account`'s update in `round`.
    /// @param round The round.
    /// @param account The member.
    /// @return The count.
    function rejectionCount(uint256 round, address account) external view returns (uint256) {
        return _rejectionCount[round][account];
    }

    /// @notice The privacy budget `account` declared (all zero if none).
    /// @param account The member.
    /// @return The budget.
    function privacyBudget(address account) external view returns (PrivacyBudget memory) {
        BudgetRecord storage b = _budgets[account];
        return PrivacyBudget(b.epsilonMicros, b.deltaAtto, b.noiseMicros, b.clipMicros, b.accountant);
    }

    /// @notice The cumulative ε·10^6 `account` reported in its latest commitment (0 before any).
    /// @param account The member.
    /// @return The spend.
    function epsilonSpent(address account) external view returns (uint64) {
        return _budgets[account].spentMicros;
    }

    /// @notice Whether `round` is finalized, or open with a vote pair that has quorum now
    /// (counting every unstruck departure as a lost vote, as `finalize` does).
    /// @param round The round.
    /// @return True if so.
    function quorumReached(uint256 round) external view returns (bool) {
        Round storage r = _rounds[round];
        if (r.status == RoundStatus.Finalized) return true;
        if (r.status != RoundStatus.Open) return false;
        (uint256 votes,) = _countedVotes(r);
        return _hasQuorum(votes, _voters(round, r));
    }

    /// @notice Departures from the Active set since `round` opened that are not struck yet
    /// (0 unless the round is open).
    /// @param round The round.
    /// @return The number of departures `finalize` counts as lost votes.
    function pendingDepartures(uint256 round) external view returns (uint256) {
        Round storage r = _rounds[round];
        if (r.status != RoundStatus.Open) return 0;
        (, uint256 pending) = _countedVotes(r);
        return pending;
    }

    /// @notice The committee of `round`: its size (0: every member attests), the Active slots
    /// it is drawn from, and its draw key, keccak256(abi.encode(beacon value, round)) (zero
    /// until the beacon is `Ready`). A member at slot `s` sits on it iff
    /// `committeeSeat(key, s, domain) < size`.
    /// @param round The round.
    /// @return size Attesters drawn.
    /// @return domain Slots drawn from (`HospitalRegistry.slotCount` at opening).
    /// @return key The key of `committeeSeat`.
    function committeeOf(uint256 round) external view returns (uint256 size, uint256 domain, bytes32 key) {
        Committee memory c = _committees[round];
        (size, domain) = (c.size, c.domain);
        if (size != 0) key = _committeeKey(round);
    }

    /// @notice Attesters drawn per round from now on (0: every member).
    /// @return The committee size.
    function committeeSize() external view returns (uint32) {
        return _committeeSize;
    }

    /// @notice The seat of the member at Active slot `slot` among `n` under `key`
    /// (`CommitteeDraw.seat`): it sits on a committee of `k` iff the seat is below `k`.
    /// @param key The round's key (`committeeOf`).
    /// @param slot The member's Active slot (`HospitalRegistry.slotOf`); below `n`.
    /// @param n The slots drawn from (`committeeOf`'s domain); nonzero.
    /// @return The seat.
    function committeeSeat(bytes32 key, uint256 slot, uint256 n) external pure returns (uint256) {
        return CommitteeDraw.seat(key, slot, n);
    }

    /// @notice The beacon that draws committees (zero address until bound).
    /// @return The beacon address.
    function beacon() external view returns (address) {
        return address(_beacon);
    }

    /// @notice The registry this ledger reads.
    /// @return The registry address.
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @notice The credit token this ledger mints.
    /// @return The token address.
    function credit() external view returns (address) {
        return address(_credit);
    }

    /// @notice The ledger's settings.
    /// @return The settings given at deployment.
    function config() external view returns (Config memory) {
        return Config(
            _commitWindow,
            _attestWindow,
            _creditPerRound,
            _quorumNumerator,
            _quorumDenominator,
            uint8(_creditScheme),
            _slashPerRejection
        );
    }

    /// @notice Commit and attestation windows in seconds.
    /// @return commitWindow Seconds from opening to the commit deadline.
    /// @return attestWindow Seconds from the commit deadline to the attestation deadline.
    function windows() external view returns (uint64 commitWindow, uint64 attestWindow) {
        return (_commitWindow, _attestWindow);
    }

    /// @notice Credits split among a finalized round's accepted contributors.
    /// @return The amount in the token's smallest unit.
    function creditPerRound() external view returns (uint256) {
        return _creditPerRound;
    }

    /// @notice The quorum fraction: a pair needs votes * denominator > members * numerator.
    /// @return numerator The numerator.
    /// @return denominator The denominator.
    function quorum() external view returns (uint256 numerator, uint256 denominator) {
        return (_quorumNumerator, _quorumDenominator);
    }

    // ------------------------------------------------------------------ internals

    function _openRound(uint256 round) private view returns (Round storage r) {
        r = _rounds[round];
        if (r.status != RoundStatus.Open) revert RoundLedgerRoundNotOpen(round, r.status);
    }

    /// @dev The open round, or the current round once finalized (late records), before its
    /// attestation deadline.
    function _attestableRound(uint256 round) private view returns (Round storage r) {
        r = _rounds[round];
        RoundStatus status = r.status;
        if (status != RoundStatus.Open && !(status == RoundStatus.Finalized && round == _currentRound)) {
            revert RoundLedgerRoundNotOpen(round, status);
        }
        if (block.timestamp > r.attestDeadline) revert RoundLedgerAttestClosed(round, r.attestDeadline);
    }

    /// @dev Checks the caller's cumulative ε against its declared budget and its last report,
    /// then records it.
    function _spend(uint256 round, uint64 epsilonMicros) private {
        BudgetRecord storage budget = _budgets[msg.sender];
        if (budget.accountant == bytes24(0)) revert RoundLedgerBudgetNotDeclared(msg.sender);
        uint64 cap = budget.epsilonMicros;
        if (epsilonMicros > cap) revert RoundLedgerEpsilonOverBudget(round, msg.sender, epsilonMicros, cap);
        if (cap != 0 && epsilonMicros == 0) revert RoundLedgerZeroEpsilon(round, msg.sender);
        uint64 previous = budget.spentMicros;
        if (epsilonMicros < previous) revert RoundLedgerEpsilonDecreased(round, msg.sender, epsilonMicros, previous);
        if (epsilonMicros != previous) budget.spentMicros = epsilonMicros;
    }

    /// @dev Commit indexes of the updates `account` accepted in its attestation of `round` (0: none).
    function _attestedMask(uint256 round, address account) private view returns (uint224) {
        bytes32 voteKey = _votes[round][account];
        return voteKey == bytes32(0) ? 0 : _tallies[round][voteKey].acceptedMask;
    }

    /// @dev Reverts if the caller attests an accepted set (`mask`) holding an update it rejected.
    function _checkNotRejected(uint256 round, uint224 mask) private view {
        uint224 both = mask & _rejectedMask[round][msg.sender];
        if (both == 0) return;
        uint256 i = 0;
        while ((uint256(both) >> i) & 1 == 0) ++i;
        revert RoundLedgerContradictoryRejection(round, msg.sender, _committers[round][i]);
    }

    /// @dev The quorum's denominator: the committee size, or the round's member count.
    function _voters(uint256 round, Round storage r) private view returns (uint256) {
        uint256 k = _committees[round].size;
        return k != 0 ? k : r.memberCount;
    }

    /// @dev keccak256(abi.encode(beacon value, round)), zero while the beacon has no value.
    function _committeeKey(uint256 round) private view returns (bytes32) {
        IRoundBeacon b = _beacon;
        if (address(b) == address(0)) return bytes32(0);
        bytes32 seed = b.valueOf(round);
        return seed == bytes32(0) ? bytes32(0) : keccak256(abi.encode(seed, round));
    }

    /// @dev Reverts unless the caller sits on the committee of `round` (no-op without one).
    /// The caller is a member of the round (`onlyRoundMember`: Active since before the opening
    /// and still), so it holds the slot it held at the opening, below the committee's domain.
    function _checkCommittee(uint256 round) private view {
        Committee memory c = _committees[round];
        if (c.size == 0) return;
        bytes32 key = _committeeKey(round);
        if (key == bytes32(0)) revert RoundLedgerCommitteeNotDrawn(round);
        (uint64 slot, uint64 since) = _registry.slotOf(msg.sender);
        // a round member holds a slot below the domain (defensive: no seat otherwise)
        uint256 s = since == 0 || slot >= c.domain ? type(uint256).max : CommitteeDraw.seat(key, slot, c.domain);
        if (s >= c.size) revert RoundLedgerNotCommitteeMember(round, msg.sender, s);
    }

    function _hasQuorum(uint256 votes, uint256 members) private view returns (bool) {
        return votes != 0 && votes * _quorumDenominator > members * _quorumNumerator;
    }

    function _checkRoundMember(uint256 round) private view {
        Round storage r = _rounds[round];
        if (r.status == RoundStatus.None) revert RoundLedgerRoundNotOpen(round, RoundStatus.None);
        (uint64 activeSince, uint64 activeUntil) = _registry.tenure(msg.sender);
        if (activeSince == 0 || activeUntil != 0 || activeSince > r.membershipEpoch) {
            revert RoundLedgerNotRoundMember(round, msg.sender);
        }
    }

    /// @dev Votes of the leading pair that count: its tally (struck votes removed) less the
    /// departures since opening not struck yet (`pending`), each counted as a lost vote.
    function _countedVotes(Round storage r) private view returns (uint256 votes, uint256 pending) {
        pending = _registry.membership().departures - r.departuresAtOpen - r.struck;
        votes = r.leaderVotes > pending ? r.leaderVotes - pending : 0;
    }

    function _settle(uint256 round, Round storage r) private {
        r.settled = true;
        uint224 mask = _tallies[round][_votes[round][r.leader]].acceptedMask;
        uint256 minted = _mintCredits(round, _inCommitOrder(round, mask));
        emit RoundSettled(round, msg.sender, minted);
        if (_slashPerRejection != 0) _slash(round, mask, r.commitCount);
    }

    /// @dev The committers in `mask`, ascending by address (for views).
    function _unmask(uint256 round, uint224 mask) private view returns (address[] memory accepted) {
        accepted = _inCommitOrder(round, mask);
        _sortAscending(accepted);
    }

    /// @dev The committers in `mask`, in commit order (no sort: what settlement iterates).
    function _inCommitOrder(uint256 round, uint224 mask) private view returns (address[] memory accepted) {
        uint256 count = _rounds[round].commitCount;
        address[] memory found = new address[](count);
        uint256 n = 0;
        for (uint256 i = 0; i < count; ++i) {
            if ((uint256(mask) >> i) & 1 == 1) found[n++] = _committers[round][i];
        }
        accepted = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            accepted[i] = found[i];
        }
    }

    function _sortAscending(address[] memory accounts) private pure {
        for (uint256 i = 1; i < accounts.length; ++i) {
            address key = accounts[i];
            uint256 j = i;
            while (j > 0 && accounts[j - 1] > key) {
                accounts[j] = accounts[j - 1];
                --j;
            }
            accounts[j] = key;
        }
    }

    function _mintCredits(uint256 round, address[] memory accepted) private returns (uint256 minted) {
        if (_creditPerRound == 0) return 0;
        uint256 n = accepted.length;
        uint256[] memory weights = new uint256[](n);
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            weights[i] = _creditScheme == CreditScheme.Equal ? 1 : _commitments[round][accepted[i]].samples;
            total += weights[i];
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 amount = (_creditPerRound * weights[i]) / total;
            minted += amount;
            if (amount != 0) _credit.mint(accepted[i], amount);
        }
    }

    function _slash(uint256 round, uint224 acceptedMask, uint256 commitCount) private {
        for (uint256 i = 0; i < commitCount; ++i) {
            if ((uint256(acceptedMask) >> i) & 1 == 1) continue;
            address account = _committers[round][i];
            uint256 amount = _credit.slash(account, _slashPerRejection);
            emit ContributorSlashed(round, account, amount);
        }
    }
}
