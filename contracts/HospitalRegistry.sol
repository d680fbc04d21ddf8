// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumAdmin} from "./ConsortiumAdmin.sol";
import {IHospitalRegistry} from "./IHospitalRegistry.sol";

/**
 * @title HospitalRegistry
 * @notice One on-chain identity per institution of the medmesh consortium: its account, its
 * libp2p peer ID and its two public keys (X25519 for sealing updates, Ed25519 for signing
 * gossip). This is the consortium's Sybil resistance: a seat costs a stake bond and the
 * endorsements of a quorum of the Active members, and an institution ID holds one seat.
 *
 * Life cycle: a hospital registers itself with its bond (Pending). While genesis is open (fewer
 * than `genesisSeats` admissions so far) the admin admits; after that anyone may admit a
 * Pending identity that holds the bond and the endorsements of more than
 * `quorumNumerator / quorumDenominator` of the Active members. The same quorum of the Active
 * members (the target counted, so it is the round ledger's more-than-2/3 over the same set)
 * can suspend, reinstate or revoke a member. A member may leave (Exited) and take its
 * bond back after `exitCooldown`; a revoked member's bond is forfeited when the consortium
 * configured it so, and refundable after the cooldown otherwise.
 * Each identity declares its cohort (the patients behind its updates) when it registers; its
 * admission is the endorsement of that figure, and the round ledger caps every commitment's
 * sample count by it.
 * @dev Institution IDs, peer IDs and public keys stay reserved for good (also after a key
 * rotation, an exit or a revocation), and an account holds at most one identity for ever. Endorsements and
 * sanction votes cast by members that later stop being Active still count. Sanction votes
 * belong to the target's current status: every status change starts a new epoch, so votes
 * cast before it no longer count. The quorum fraction is at least 2/3: a simple majority must
 * not be able to admit, suspend or revoke anyone (it could then hold 2/3 of the next round).
 * Every change of the Active set advances a membership epoch and is recorded in the member's
 * tenure, so that the round ledger fixes each round's membership when the round opens and a
 * sanction or admission takes effect on quorums from the next round (`membership`, `tenure`).
 */
contract HospitalRegistry is ConsortiumAdmin, IHospitalRegistry {
    /// @notice Life cycle of an identity.
    enum Status {
        None,
        Pending,
        Active,
        Suspended,
        Revoked,
        Exited
    }

    /// @notice What a quorum of members can vote on about a member.
    enum Sanction {
        Suspend,
        Reinstate,
        Revoke
    }

    /// @notice A registered institution.
    /// @param institutionId keccak256 of the institution's name; registrable once.
    /// @param account The account that registered and acts for the institution.
    /// @param status Current status.
    /// @param joinedAt Timestamp of admission (0 until admitted).
    /// @param epoch Sanction epoch: incremented on every status change after registration.
    /// @param sealKey X25519 public key that peers seal updates to.
    /// @param signKey Ed25519 public key that signs the peer's gossip.
    /// @param peerId The libp2p peer ID (base58, e.g. "12D3KooW...").
    /// @param bond Stake bond held, in wei.
    /// @param leftAt Timestamp of the exit or revocation (0 before); the bond cooldown runs from it.
    /// @param cohort Patients (training samples) the institution declared at registration; the
    /// admission (by the admin during genesis, by a quorum of endorsements after it) endorses
    /// it, and the round ledger refuses commitments claiming more samples.
    struct Identity {
        bytes32 institutionId;
        address account;
        Status status;
        uint64 joinedAt;
        uint16 epoch;
        bytes32 sealKey;
        bytes32 signKey;
        string peerId;
        uint128 bond;
        uint64 leftAt;
        uint64 cohort;
    }

    /// @notice The registry's settings, fixed at deployment.
    /// @param genesisSeats Admissions the admin makes alone before endorsement takes over.
    /// @param quorumNumerator Quorum numerator for endorsements and sanctions.
    /// @param quorumDenominator Quorum denominator.
    /// @param bond Stake bond (wei) an identity must hold to be admitted.
    /// @param exitCooldown Seconds between leaving and withdrawing the bond.
    /// @param forfeitOnRevoke Whether a revoked member's bond is forfeited.
    struct Config {
        uint64 genesisSeats;
        uint64 quorumNumerator;
        uint64 quorumDenominator;
        uint128 bond;
        uint64 exitCooldown;
        bool forfeitOnRevoke;
    }

    /// @dev An Active stay in membership epochs (see `tenure`) and the Active slot it holds
    /// (see `slotOf`): one storage slot.
    struct Tenure {
        uint64 activeSince;
        uint64 activeUntil;
        uint64 slot;
    }

    /// @dev The membership clock (see `membership`) and the number of Active slots ever
    /// opened (see `slotCount`): one slot.
    struct Clock {
        uint64 epoch;
        uint64 departures;
        uint64 slots;
    }

    /// @notice Longest accepted peer ID in bytes (libp2p IDs are ~52 characters).
    uint256 public constant MAX_PEER_ID_LENGTH = 128;

    uint64 private immutable _genesisSeats;
    uint64 private immutable _quorumNumerator;
    uint64 private immutable _quorumDenominator;
    uint128 private immutable _bondRequired;
    uint64 private immutable _exitCooldown;
    bool private immutable _forfeitOnRevoke;

    mapping(address account => Identity) private _identities;
    mapping(bytes32 institutionId => address) private _accountOfInstitution;
    mapping(bytes32 peerIdHash => address) private _accountOfPeer;
    mapping(bytes32 key => address) private _accountOfKey;
    mapping(address candidate => mapping(address endorser => bool)) private _endorsed;
    mapping(address candidate => uint256) private _endorsements;
    mapping(bytes32 ballot => mapping(address voter => bool)) private _sanctionVoted;
    mapping(bytes32 ballot => uint256) private _sanctionVotes;
    address[] private _members;
    uint256 private _activeCount;
    uint256 private _admittedCount;
    uint256 private _forfeited;
    mapping(address account => Tenure) private _tenures;
    Clock private _clock;
    uint64[] private _freeSlots;

    /// @notice `account` already holds an identity.
    /// @param account The account that tried to register again.
    error HospitalRegistryAlreadyRegistered(address account);

    /// @notice `institutionId` is already taken by `account`.
    /// @param institutionId The contested institution ID.
    /// @param account The account holding it.
    error HospitalRegistryInstitutionTaken(bytes32 institutionId, address account);

    /// @notice `peerId` is already taken by `account`.
    /// @param peerId The contested peer ID.
    /// @param account The account holding it.
    error HospitalRegistryPeerTaken(string peerId, address account);

    /// @notice The public key `key` (sealing or signing) is already held by `account`.
    /// @param key The contested key.
    /// @param account The account holding it.
    error HospitalRegistryKeyTaken(bytes32 key, address account);

    /// @notice The declared cohort (patients behind the institution's updates) is zero.
    /// @param cohort The cohort given.
    error HospitalRegistryInvalidCohort(uint256 cohort);

    /// @notice The institution ID is zero.
    /// @param institutionId The rejected ID.
    error HospitalRegistryInvalidInstitution(bytes32 institutionId);

    /// @notice The peer ID is empty or longer than `MAX_PEER_ID_LENGTH` bytes.
    /// @param peerId The rejected peer ID.
    error HospitalRegistryInvalidPeerId(string peerId);

    /// @notice One of the public keys is zero.
    /// @param sealKey The X25519 key given.
    /// @param signKey The Ed25519 key given.
    error HospitalRegistryInvalidKeys(bytes32 sealKey, bytes32 signKey);

    /// @notice `account` holds no identity.
    /// @param account The unknown account.
    error HospitalRegistryUnknownAccount(address account);

    /// @notice The action does not apply to an identity in status `status`.
    /// @param account The identity's account.
    /// @param status Its current status.
    error HospitalRegistryInvalidStatus(address account, Status status);

    /// @notice The quorum fraction must satisfy 0 < numerator < denominator and be at least 2/3.
    /// @param numerator The numerator given.
    /// @param denominator The denominator given.
    error HospitalRegistryInvalidQuorum(uint256 numerator, uint256 denominator);

    /// @notice At least one genesis seat is needed to start the consortium.
    /// @param genesisSeats The number given.
    error HospitalRegistryInvalidGenesis(uint256 genesisSeats);

    /// @notice Genesis is over: `admitted` admissions reached `genesisSeats`; admission now
    /// needs endorsements.
    /// @param admitted Admissions so far.
    /// @param genesisSeats The genesis seats.
    error HospitalRegistryGenesisClosed(uint256 admitted, uint256 genesisSeats);

    /// @notice `account` holds `bond` wei, less than the `required` bond.
    /// @param account The identity's account.
    /// @param bond Its bond.
    /// @param required The bond admission needs.
    error HospitalRegistryBondTooLow(address account, uint256 bond, uint256 required);

    /// @notice `candidate` has `endorsements` endorsements; admission needs `needed`.
    /// @param candidate The Pending identity.
    /// @param endorsements Its endorsements.
    /// @param needed Endorsements needed now.
    error HospitalRegistryNotEnoughEndorsements(address candidate, uint256 endorsements, uint256 needed);

    /// @notice `account` is not an Active member.
    /// @param account The caller.
    error HospitalRegistryNotActiveMember(address account);

    /// @notice `endorser` already endorsed `candidate`.
    /// @param candidate The candidate.
    /// @param endorser The endorser.
    error HospitalRegistryAlreadyEndorsed(address candidate, address endorser);

    /// @notice `voter` already voted `action` against `account` in its current epoch.
    /// @param account The target.
    /// @param voter The voter.
    /// @param action The sanction.
    error HospitalRegistryAlreadyVoted(address account, address voter, Sanction action);

    /// @notice A member cannot vote a sanction about itself.
    /// @param account The member.
    error HospitalRegistrySelfSanction(address account);

    /// @notice The bond of `account` is locked until `availableAt`.
    /// @param account The identity's account.
    /// @param availableAt First timestamp at which it can be withdrawn.
    error HospitalRegistryBondLocked(address account, uint256 availableAt);

    /// @notice `account` has no bond to withdraw.
    /// @param account The identity's account.
    error HospitalRegistryNoBond(address account);

    /// @notice Sending `amount` wei to `to` failed.
    /// @param to The receiver.
    /// @param amount The amount.
    error HospitalRegistryTransferFailed(address to, uint256 amount);

    /// @notice A bond deposit of zero wei, or one that overflows 128 bits.
    /// @param account The depositor.
    /// @param amount The amount sent.
    error HospitalRegistryInvalidDeposit(address account, uint256 amount);

    /// @notice `account` registered an identity, now Pending, with a `bond` wei deposit.
    /// @param account The registering account.
    /// @param institutionId The institution ID.
    /// @param peerId The libp2p peer ID.
    /// @param sealKey The X25519 public key.
    /// @param signKey The Ed25519 public key.
    /// @param bond The wei sent with the registration.
    /// @param cohort The declared cohort (most samples a commitment may claim).
    event Registered(
        address indexed account,
        bytes32 indexed institutionId,
        string peerId,
        bytes32 sealKey,
        bytes32 signKey,
        uint256 bond,
        uint64 cohort
    );

    /// @notice `account` added `amount` wei to its bond, which is now `bond`.
    /// @param account The identity's account.
    /// @param amount The deposit.
    /// @param bond The bond after it.
    event BondDeposited(address indexed account, uint256 amount, uint256 bond);

    /// @notice `endorser` endorsed `candidate`, which now has `endorsements`.
    /// @param candidate The Pending identity.
    /// @param endorser The Active member.
    /// @param endorsements Its endorsement count after this one.
    event Endorsed(address indexed candidate, address indexed endorser, uint256 endorsements);

    /// @notice `account` was admitted (Active) by `admittedBy`.
    /// @param account The admitted account.
    /// @param admittedBy The caller (the admin during genesis).
    /// @param endorsements Its endorsements at admission.
    /// @param genesis Whether this was a genesis admission by the admin.
    event Admitted(address indexed account, address indexed admittedBy, uint256 endorsements, bool genesis);

    /// @notice `voter` voted `action` about `account`: `votes` of `needed` so far.
    /// @param account The target.
    /// @param voter The Active member voting.
    /// @param action The sanction.
    /// @param votes Votes for it in the target's current epoch.
    /// @param needed Votes needed now.
    event SanctionVoted(address indexed account, address indexed voter, Sanction action, uint256 votes, uint256 needed);

    /// @notice A quorum suspended `account`.
    /// @param account The suspended member.
    /// @param votes Votes that carried it.
    event Suspended(address indexed account, uint256 votes);

    /// @notice A quorum reinstated `account` (Active again).
    /// @param account The reinstated member.
    /// @param votes Votes that carried it.
    event Reinstated(address indexed account, uint256 votes);

    /// @notice A quorum revoked `account` for good.
    /// @param account The revoked account.
    /// @param previousStatus The status it had before.
    /// @param votes Votes that carried it.
    event Revoked(address indexed account, Status previousStatus, uint256 votes);

    /// @notice `account` left the consortium.
    /// @param account The account.
    /// @param previousStatus The status it had before.
    event Exited(address indexed account, Status previousStatus);

    /// @notice `account` replaced its peer ID and keys.
    /// @param account The identity's account.
    /// @param peerId The new libp2p peer ID.
    /// @param sealKey The new X25519 public key.
    /// @param signKey The new Ed25519 public key.
    event KeysRotated(address indexed account, string peerId, bytes32 sealKey, bytes32 signKey);

    /// @notice `account` withdrew its `amount` wei bond.
    /// @param account The account.
    /// @param amount The bond returned.
    event BondWithdrawn(address indexed account, uint256 amount);

    /// @notice The `amount` wei bond of revoked `account` was forfeited.
    /// @param account The revoked account.
    /// @param amount The bond forfeited.
    event BondForfeited(address indexed account, uint256 amount);

    /// @notice The admin sent `amount` wei of forfeited bonds to `to`.
    /// @param to The receiver.
    /// @param amount The amount.
    event ForfeitsSwept(address indexed to, uint256 amount);

    /// @dev Restricts a function to Active members.
    modifier onlyActiveMember() {
        if (_identities[msg.sender].status != Status.Active) revert HospitalRegistryNotActiveMember(msg.sender);
        _;
    }

    /// @param initialAdmin The consortium admin (admits the genesis members).
    /// @param config_ The registry's settings (see `Config`).
    constructor(address initialAdmin, Config memory config_) ConsortiumAdmin(initialAdmin) {
        if (
            config_.quorumNumerator == 0 || config_.quorumNumerator >= config_.quorumDenominator
                || uint256(config_.quorumNumerator) * 3 < uint256(config_.quorumDenominator) * 2
        ) {
            revert HospitalRegistryInvalidQuorum(config_.quorumNumerator, config_.quorumDenominator);
        }
        if (config_.genesisSeats == 0) revert HospitalRegistryInvalidGenesis(config_.genesisSeats);
        _genesisSeats = config_.genesisSeats;
        _quorumNumerator = config_.quorumNumerator;
        _quorumDenominator = config_.quorumDenominator;
        _bondRequired = config_.bond;
        _exitCooldown = config_.exitCooldown;
        _forfeitOnRevoke = config_.forfeitOnRevoke;
    }

    // ------------------------------------------------------------------ joining

    /// @notice Registers the caller's institution; the identity starts Pending. The wei sent
    /// is the start of its stake bond.
    /// @param institutionId keccak256 of the institution's name; nonzero and unused.
    /// @param peerId The libp2p peer ID; nonempty, at most 128 bytes, unused.
    /// @param sealKey X25519 public key; nonzero.
    /// @param signKey Ed25519 public key; nonzero.
    /// @param cohort Patients (training samples) the institution holds for the campaign; nonzero.
    /// Endorsers and the genesis admin admit the identity with this figure, and no commitment
    /// may claim more samples.
    function register(
        bytes32 institutionId,
        string calldata peerId,
        bytes32 sealKey,
        bytes32 signKey,
        uint64 cohort
    ) external payable {
        if (_identities[msg.sender].status != Status.None) revert HospitalRegistryAlreadyRegistered(msg.sender);
        if (institutionId == bytes32(0)) revert HospitalRegistryInvalidInstitution(institutionId);
        _checkKeys(peerId, sealKey, signKey);
        if (msg.value > type(uint128).max) revert HospitalRegistryInvalidDeposit(msg.sender, msg.value);
        address holder = _accountOfInstitution[institutionId];
        if (holder != address(0)) revert HospitalRegistryInstitutionTaken(institutionId, holder);
        if (cohort == 0) revert HospitalRegistryInvalidCohort(cohort);
        _reservePeer(peerId);
        _reserveKeys(sealKey, signKey);

        Identity storage id = _identities[msg.sender];
        id.institutionId = institutionId;
        id.account = msg.sender;
        id.status = Status.Pending;
        id.sealKey = sealKey;
        id.signKey = signKey;
        id.peerId = peerId;
        id.bond = uint128(msg.value);
        id.cohort = cohort;
        _accountOfInstitution[institutionId] = msg.sender;
        _members.push(msg.sender);
        emit Registered(msg.sender, institutionId, peerId, sealKey, signKey, msg.value, cohort);
    }

    /// @notice Adds the wei sent to the caller's bond. Pending or Active identities only.
    function depositBond() external payable {
        Identity storage id = _known(msg.sender);
        if (id.status != Status.Pending && id.status != Status.Active) {
            revert HospitalRegistryInvalidStatus(msg.sender, id.status);
        }
        uint256 bond = uint256(id.bond) + msg.value;
        if (msg.value == 0 || bond > type(uint128).max) revert HospitalRegistryInvalidDeposit(msg.sender, msg.value);
        id.bond = uint128(bond);
        emit BondDeposited(msg.sender, msg.value, bond);
    }

    /// @notice Endorses a Pending `candidate`. Active members only, once per candidate.
    /// @param candidate The Pending identity's account.
    function endorse(address candidate) external onlyActiveMember {
        Identity storage id = _known(candidate);
        if (id.status != Status.Pending) revert HospitalRegistryInvalidStatus(candidate, id.status);
        if (_endorsed[candidate][msg.sender]) revert HospitalRegistryAlreadyEndorsed(candidate, msg.sender);
        _endorsed[candidate][msg.sender] = true;
        uint256 count = _endorsements[candidate] + 1;
        _endorsements[candidate] = count;
        emit Endorsed(candidate, msg.sender, count);
    }

    /// @notice Admits a Pending identity that holds the bond, making it Active. During genesis
    /// only the admin may call it; after genesis anyone may, once the candidate has the
    /// endorsements of a quorum of the Active members.
    /// @param account The identity's account.
    function admit(address account) external {
        Identity storage id = _known(account);
        if (id.status != Status.Pending) revert HospitalRegistryInvalidStatus(account, id.status);
        bool genesis = _admittedCount < _genesisSeats;
        uint256 endorsed = _endorsements[account];
        if (genesis) {
            if (msg.sender != admin()) revert ConsortiumAdminUnauthorizedAccount(msg.sender);
        } else {
            uint256 needed = _needed(_activeCount);
            if (endorsed < needed) revert HospitalRegistryNotEnoughEndorsements(account, endorsed, needed);
        }
        if (id.bond < _bondRequired) revert HospitalRegistryBondTooLow(account, id.bond, _bondRequired);
        _setStatus(id, Status.Active);
        id.joinedAt = uint64(block.timestamp);
        ++_admittedCount;
        emit Admitted(account, msg.sender, endorsed, genesis);
    }

    // ------------------------------------------------------------------ sanctions

    /// @notice Votes `action` about `account`; the first vote proposes it. When the votes reach
    /// a quorum of the Active members (the target counted if Active: more than 2/3 of the
    /// membership, as for a round; the target cannot vote) the sanction takes effect on the
    /// target's status at once, and on round quorums from the next round the ledger opens:
    /// Suspend (Active -> Suspended), Reinstate (Suspended -> Active), Revoke (Active or
    /// Suspended -> Revoked, bond forfeited if so configured).
    /// @param account The target member.
    /// @param action The sanction.
    function voteSanction(address account, Sanction action) external onlyActiveMember {
        if (account == msg.sender) revert HospitalRegistrySelfSanction(account);
        Identity storage id = _known(account);
        Status status = id.status;
        bool applies = (action == Sanction.Suspend && status == Status.Active)
            || (action == Sanction.Reinstate && status == Status.Suspended)
            || (action == Sanction.Revoke && (status == Status.Active || status == Status.Suspended));
        if (!applies) revert HospitalRegistryInvalidStatus(account, status);
        bytes32 ballot = _ballot(account, id.epoch, action);
        if (_sanctionVoted[ballot][msg.sender]) revert HospitalRegistryAlreadyVoted(account, msg.sender, action);
        _sanctionVoted[ballot][msg.sender] = true;
        uint256 votes = _sanctionVotes[ballot] + 1;
        _sanctionVotes[ballot] = votes;
        uint256 needed = _needed(_activeCount);
        emit SanctionVoted(account, msg.sender, action, votes, needed);
        if (votes < needed) return;

        if (action == Sanction.Suspend) {
            _setStatus(id, Status.Suspended);
            emit Suspended(account, votes);
        } else if (action == Sanction.Reinstate) {
            _setStatus(id, Status.Active);
            emit Reinstated(account, votes);
        } else {
            _setStatus(id, Status.Revoked);
            id.leftAt = uint64(block.timestamp);
            emit Revoked(account, status, votes);
            uint256 bond = id.bond;
            if (_forfeitOnRevoke && bond != 0) {
                id.bond = 0;
                _forfeited += bond;
                emit BondForfeited(account, bond);
            }
        }
    }

    // ------------------------------------------------------------------ own identity

    /// @notice Replaces the caller's peer ID and keys (Pending or Active identities). A new
    /// peer ID and new keys must be unused; the old ones stay reserved to this account.
    /// @param peerId The libp2p peer ID (may be the current one).
    /// @param sealKey The new X25519 public key; nonzero.
    /// @param signKey The new Ed25519 public key; nonzero.
    function rotateKeys(string calldata peerId, bytes32 sealKey, bytes32 signKey) external {
        Identity storage id = _known(msg.sender);
        if (id.status != Status.Pending && id.status != Status.Active) {
            revert HospitalRegistryInvalidStatus(msg.sender, id.status);
        }
        _checkKeys(peerId, sealKey, signKey);
        if (keccak256(bytes(peerId)) != keccak256(bytes(id.peerId))) {
            _reservePeer(peerId);
            id.peerId = peerId;
        }
        _reserveKeys(sealKey, signKey);
        id.sealKey = sealKey;
        id.signKey = signKey;
        emit KeysRotated(msg.sender, peerId, sealKey, signKey);
    }

    /// @notice Leaves the consortium (Pending or Active identities); the bond can be withdrawn
    /// `exitCooldown` seconds later.
    function exit() external {
        Identity storage id = _known(msg.sender);
        Status previous = id.status;
        if (previous != Status.Pending && previous != Status.Active) {
            revert HospitalRegistryInvalidStatus(msg.sender, previous);
        }
        _setStatus(id, Status.Exited);
        id.leftAt = uint64(block.timestamp);
        emit Exited(msg.sender, previous);
    }

    /// @notice Sends the caller its bond, `exitCooldown` seconds after it exited (or was revoked
    /// without forfeiture).
    function withdrawBond() external {
        Identity storage id = _known(msg.sender);
        if (id.status != Status.Exited && id.status != Status.Revoked) {
            revert HospitalRegistryInvalidStatus(msg.sender, id.status);
        }
        uint256 availableAt = uint256(id.leftAt) + _exitCooldown;
        if (block.timestamp < availableAt) revert HospitalRegistryBondLocked(msg.sender, availableAt);
        uint256 amount = id.bond;
        if (amount == 0) revert HospitalRegistryNoBond(msg.sender);
        id.bond = 0;
        emit BondWithdrawn(msg.sender, amount);
        _sendValue(msg.sender, amount);
    }

    /// @notice Sends every forfeited bond to `to`. Admin only.
    /// @param to The consortium's treasury.
    function sweepForfeited(address payable to) external onlyAdmin {
        uint256 amount = _forfeited;
        if (amount == 0) revert HospitalRegistryNoBond(address(this));
        _forfeited = 0;
        emit ForfeitsSwept(to, amount);
        _sendValue(to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IHospitalRegistry
    function isActive(address account) external view returns (bool) {
        return _identities[account].status == Status.Active;
    }

    /// @inheritdoc IHospitalRegistry
    function activeCount() external view returns (uint256) {
        return _activeCount;
    }

    /// @inheritdoc IHospitalRegistry
    function membership() external view returns (Membership memory) {
        Clock memory c = _clock;
        return Membership(c.epoch, uint64(_activeCount), c.departures);
    }

    /// @inheritdoc IHospitalRegistry
    function slotOf(address account) external view returns (uint64 slot, uint64 since) {
        Tenure memory t = _tenures[account];
        if (t.activeSince == 0 || t.activeUntil != 0) return (0, 0);
        return (t.slot, t.activeSince);
    }

    /// @inheritdoc IHospitalRegistry
    function slotCount() external view returns (uint64) {
        return _clock.slots;
    }

    /// @inheritdoc IHospitalRegistry
    function tenure(address account) external view returns (uint64 activeSince, uint64 activeUntil) {
        Tenure memory t = _tenures[account];
        return (t.activeSince, t.activeUntil);
    }

    /// @notice The identity held by `account` (all zero with status None if there is none).
    /// @param account The account to look up.
    /// @return The identity.
    function identity(address account) external view returns (Identity memory) {
        return _identities[account];
    }

    /// @notice The account that registered `peerId`, now or before a rotation (zero if none).
    /// @param peerId The libp2p peer ID.
    /// @return The account.
    function accountOfPeer(string calldata peerId) external view returns (address) {
        return _accountOfPeer[keccak256(bytes(peerId))];
    }

    /// @inheritdoc IHospitalRegistry
    function cohortOf(address account) external view returns (uint64) {
        return _identities[account].cohort;
    }

    /// @notice The account that registered `key` as its sealing or signing key, now or before a
    /// rotation (zero if none).
    /// @param key An X25519 or Ed25519 public key.
    /// @return The account.
    function accountOfKey(bytes32 key) external view returns (address) {
        return _accountOfKey[key];
    }

    /// @notice The account that registered `institutionId` (zero if none).
    /// @param institutionId keccak256 of the institution's name.
    /// @return The account.
    function accountOfInstitution(bytes32 institutionId) external view returns (address) {
        return _accountOfInstitution[institutionId];
    }

    /// @notice Every account that ever registered, in registration order (revoked included).
    /// @return The accounts.
    function members() external view returns (address[] memory) {
        return _members;
    }

    /// @notice Every identity ever registered, in registration order (revoked included): what
    /// `members` then `identity` per member return, in one call.
    /// @return list The identities.
    function identities() external view returns (Identity[] memory list) {
        uint256 n = _members.length;
        list = new Identity[](n);
        for (uint256 i = 0; i < n; ++i) {
            list[i] = _identities[_members[i]];
        }
    }

    /// @notice The registry's settings.
    /// @return The settings given at deployment.
    function config() external view returns (Config memory) {
        return Config(_genesisSeats, _quorumNumerator, _quorumDenominator, _bondRequired, _exitCooldown, _forfeitOnRevoke);
    }

    /// @notice Whether the admin still admits alone (fewer than `genesisSeats` admissions so far).
    /// @return True during genesis.
    function genesisOpen() external view returns (bool) {
        return _admittedCount < _genesisSeats;
    }

    /// @notice Admissions so far (genesis and endorsed).
    /// @return The count.
    function admittedCount() external view returns (uint256) {
        return _admittedCount;
    }

    /// @notice Endorsements an admission needs now.
    /// @return More than the quorum fraction of the Active members.
    function endorsementsNeeded() external view returns (uint256) {
        return _needed(_activeCount);
    }

    /// @notice Endorsements `candidate` holds.
    /// @param candidate The identity's account.
    /// @return The count.
    function endorsements(address candidate) external view returns (uint256) {
        return _endorsements[candidate];
    }

    /// @notice Whether `endorser` endorsed `candidate`.
    /// @param candidate The candidate.
    /// @param endorser The member.
    /// @return True if so.
    function hasEndorsed(address candidate, address endorser) external view returns (bool) {
        return _endorsed[candidate][endorser];
    }

    /// @notice Votes for `action` about `account` in its current epoch.
    /// @param account The target.
    /// @param action The sanction.
    /// @return The vote count.
    function sanctionVotes(address account, Sanction action) external view returns (uint256) {
        return _sanctionVotes[_ballot(account, _identities[account].epoch, action)];
    }

    /// @notice Forfeited bonds not yet swept, in wei.
    /// @return The amount.
    function forfeitedBonds() external view returns (uint256) {
        return _forfeited;
    }

    // ------------------------------------------------------------------ internals

    function _known(address account) private view returns (Identity storage id) {
        id = _identities[account];
        if (id.status == Status.None) revert HospitalRegistryUnknownAccount(account);
    }

    function _setStatus(Identity storage id, Status status) private {
        bool wasActive = id.status == Status.Active;
        id.status = status;
        id.epoch += 1;
        bool isActive_ = status == Status.Active;
        if (wasActive == isActive_) return;
        Clock storage c = _clock;
        uint64 epoch = c.epoch + 1;
        c.epoch = epoch;
        Tenure storage t = _tenures[id.account];
        if (isActive_) {
            t.activeSince = epoch;
            t.activeUntil = 0;
            _takeSlot(t, c);
        } else {
            t.activeUntil = epoch;
            c.departures += 1;
            _releaseSlot(t);
        }
    }

    /// @dev Gives a member joining the Active set a slot (the last one freed, else a new one)
    /// and counts it; the tenure slot `t` is written by the caller anyway.
    function _takeSlot(Tenure storage t, Clock storage c) private {
        ++_activeCount;
        uint256 free = _freeSlots.length;
        if (free != 0) {
            t.slot = _freeSlots[free - 1];
            _freeSlots.pop();
        } else {
            t.slot = c.slots;
            c.slots += 1;
        }
    }

    /// @dev Frees the slot of a member leaving the Active set, for the next admission.
    function _releaseSlot(Tenure storage t) private {
        --_activeCount;
        _freeSlots.push(t.slot);
    }

    function _needed(uint256 eligible) private view returns (uint256) {
        return (eligible * _quorumNumerator) / _quorumDenominator + 1;
    }

    function _ballot(address account, uint16 epoch, Sanction action) private pure returns (bytes32) {
        return keccak256(abi.encode(account, epoch, action));
    }

    function _checkKeys(string calldata peerId, bytes32 sealKey, bytes32 signKey) private pure {
        if (bytes(peerId).length == 0 || bytes(peerId).length > MAX_PEER_ID_LENGTH) {
            revert HospitalRegistryInvalidPeerId(peerId);
        }
        if (sealKey == bytes32(0) || signKey == bytes32(0)) revert HospitalRegistryInvalidKeys(sealKey, signKey);
    }

    function _reservePeer(string calldata peerId) private {
        bytes32 peerHash = keccak256(bytes(peerId));
        address holder = _accountOfPeer[peerHash];
        if (holder != address(0)) revert HospitalRegistryPeerTaken(peerId, holder);
        _accountOfPeer[peerHash] = msg.sender;
    }

    /// @dev Reserves both keys to the caller, registry-wide and for good (one slot read per
    /// key): a key another identity holds, or held before a rotation, is refused, so two
    /// identities never share a sealing or a signing key.
    function _reserveKeys(bytes32 sealKey, bytes32 signKey) private {
        _reserveKey(sealKey);
        if (signKey != sealKey) _reserveKey(signKey);
    }

    function _reserveKey(bytes32 key) private {
        address holder = _accountOfKey[key];
        if (holder == address(0)) {
            _accountOfKey[key] = msg.sender;
        } else if (holder != msg.sender) {
            revert HospitalRegistryKeyTaken(key, holder);
        }
    }

    /// @dev Callers: `withdrawBond` (to the caller, its own bond) and `sweepForfeited` (admin
    /// only, to the treasury the admin names). Both zero the balance before the call.
    function _sendValue(address to, uint256 amount) private {
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert HospitalRegistryTransferFailed(to, amount);
    }
}
