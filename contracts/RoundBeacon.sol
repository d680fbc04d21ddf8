// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IHospitalRegistry} from "./IHospitalRegistry.sol";
import {IRoundBeacon} from "./IRoundBeacon.sol";
import {RoundLedger} from "./RoundLedger.sol";

/**
 * @title RoundBeacon
 * @notice Per-round randomness by commit-reveal among the members (RANDAO style), for draws
 * that must be fixed before anyone makes its update (the ckks key holder and aggregator).
 *
 * Before round `r` opens (during round `r - 1`, or before the first round), each Active member
 * commits `keccak256(abi.encode(secret, member, r, beacon))` for a 32-byte secret it keeps.
 * Commitments for `r` close when the RoundLedger opens `r`: the opener's transaction, its
 * block and its timing then no longer touch the draw. After the opening, each member of the
 * round reveals its secret within `revealWindow` seconds; the reveal is checked against its
 * commitment. The beacon mixes the revealed secrets order-free (the XOR of
 * `keccak256(abi.encode(secret, member))`, O(1) gas per reveal, the same for any reveal order)
 * and its value is `keccak256(abi.encode(mix, r, chainid, beacon))`.
 *
 * The value is final once every committer revealed, or once the window closed; it counts
 * (`Ready`) only if the reveals are a quorum of the round's members by the RoundLedger's own
 * quorum fraction, else the beacon `Failed` for that round and no draw is made from it (there
 * is no fallback to a block hash: that is the grindable seed this contract replaces, and a
 * coalition could force the fallback by withholding). A member that committed and did not
 * reveal by the deadline can be put on the record by anyone (`recordWithheld`).
 *
 * What it resists: any single member (the opener included) and any coalition that lacks one
 * honest revealer; an honest secret is uniform and unknown until its reveal. What it does not:
 * the last revealer (each withholding committer) chooses between two values, one bit of bias
 * per withholder; a coalition holding every reveal picks the value; a block producer can
 * censor or delay reveals (a censored reveal acts as a withholding). See docs/threat-model.md.
 */
contract RoundBeacon is IRoundBeacon {
    /// @notice Where a round's beacon stands.
    enum BeaconStatus {
        Committing,
        Revealing,
        Ready,
        Failed
    }

    /// @notice A round's beacon as read by `beacon`.
    /// @param status Where it stands.
    /// @param value The beacon value (zero unless `Ready`).
    /// @param commits Secrets committed for the round.
    /// @param reveals Secrets revealed.
    /// @param needed Reveals it needs to be `Ready` (0 before the round opens).
    /// @param revealDeadline Last timestamp for reveals (0 before the round opens).
    struct BeaconInfo {
        BeaconStatus status;
        bytes32 value;
        uint32 commits;
        uint32 reveals;
        uint32 needed;
        uint64 revealDeadline;
    }

    /// @dev A round's beacon as stored: one slot for the counters, one for the mix.
    struct Beacon {
        uint32 commits;
        uint32 reveals;
        bytes32 mix;
    }

    /// @dev A member's part in a round: its commitment and whether it revealed or withheld.
    struct Part {
        bytes32 commitment;
        bool revealed;
        bool withheld;
    }

    IHospitalRegistry private immutable _registry;
    RoundLedger private immutable _ledger;
    uint64 private immutable _revealWindow;

    mapping(uint256 round => Beacon) private _beacons;
    mapping(uint256 round => mapping(address account => Part)) private _parts;
    mapping(address account => uint256) private _withheldCount;

    /// @notice `account` is not an Active member of the registry.
    /// @param account The caller.
    error RoundBeaconNotActiveMember(address account);

    /// @notice `account` is not a member of `round` in good standing (not Active when it
    /// opened, or not Active now).
    /// @param round The round.
    /// @param account The caller.
    error RoundBeaconNotRoundMember(uint256 round, address account);

    /// @notice The reveal window must be nonzero and shorter than the ledger's commit window.
    /// @param revealWindow The reveal window given.
    /// @param commitWindow The ledger's commit window.
    error RoundBeaconInvalidWindow(uint64 revealWindow, uint64 commitWindow);

    /// @notice Commitments for `round` are closed: only the round after `current` takes them.
    /// @param round The round named.
    /// @param current The ledger's current round.
    error RoundBeaconCommitClosed(uint256 round, uint256 current);

    /// @notice A commitment must be nonzero.
    /// @param round The round.
    error RoundBeaconInvalidCommitment(uint256 round);

    /// @notice `account` already committed for `round`.
    /// @param round The round.
    /// @param account The member.
    error RoundBeaconAlreadyCommitted(uint256 round, address account);

    /// @notice `round` has not opened: nothing can be revealed or withheld yet.
    /// @param round The round.
    error RoundBeaconRoundNotOpened(uint256 round);

    /// @notice The reveal window of `round` closed at `deadline`.
    /// @param round The round.
    /// @param deadline Its reveal deadline.
    error RoundBeaconRevealClosed(uint256 round, uint64 deadline);

    /// @notice The reveal window of `round` is open until `deadline`.
    /// @param round The round.
    /// @param deadline Its reveal deadline.
    error RoundBeaconRevealStillOpen(uint256 round, uint64 deadline);

    /// @notice `account` committed no secret for `round`.
    /// @param round The round.
    /// @param account The member.
    error RoundBeaconNotCommitted(uint256 round, address account);

    /// @notice `account` already revealed its secret for `round`.
    /// @param round The round.
    /// @param account The member.
    error RoundBeaconAlreadyRevealed(uint256 round, address account);

    /// @notice The secret `account` revealed for `round` does not match its commitment.
    /// @param round The round.
    /// @param account The member.
    error RoundBeaconWrongSecret(uint256 round, address account);

    /// @notice `account` withheld nothing in `round` to record: it revealed, committed
    /// nothing, or its withholding is already recorded.
    /// @param round The round.
    /// @param account The account named.
    error RoundBeaconNothingWithheld(uint256 round, address account);

    /// @notice `account` committed `commitment` for `round`.
    /// @param round The round the secret is for.
    /// @param account The member.
    /// @param commitment keccak256(abi.encode(secret, account, round, beacon)).
    event SecretCommitted(uint256 indexed round, address indexed account, bytes32 commitment);

    /// @notice `account` revealed `secret` for `round`.
    /// @param round The round.
    /// @param account The member.
    /// @param secret The secret, matching its commitment.
    event SecretRevealed(uint256 indexed round, address indexed account, bytes32 secret);

    /// @notice `account` committed for `round` and did not reveal by the deadline; `recorder`
    /// put it on the record.
    /// @param round The round.
    /// @param account The withholding member.
    /// @param recorder The caller.
    event RevealWithheld(uint256 indexed round, address indexed account, address recorder);

    /// @param registry_ The hospital registry whose Active members commit.
    /// @param ledger_ The round ledger whose rounds the beacon serves.
    /// @param revealWindow_ Seconds after a round opens during which secrets are revealed;
    /// nonzero and below the ledger's commit window.
    constructor(IHospitalRegistry registry_, RoundLedger ledger_, uint64 revealWindow_) {
        uint64 commitWindow = ledger_.config().commitWindow;
        if (revealWindow_ == 0 || revealWindow_ >= commitWindow) revert RoundBeaconInvalidWindow(revealWindow_, commitWindow);
        _registry = registry_;
        _ledger = ledger_;
        _revealWindow = revealWindow_;
    }

    /// @notice Commits the caller's secret for `round`, the round after the ledger's current
    /// one (not open yet); once per member and round. Active members only.
    /// @param round The next round.
    /// @param commitment keccak256(abi.encode(secret, caller, round, this contract)); nonzero.
    function commit(uint256 round, bytes32 commitment) external {
        if (!_registry.isActive(msg.sender)) revert RoundBeaconNotActiveMember(msg.sender);
        uint256 current = _ledger.currentRound();
        if (round != current + 1) revert RoundBeaconCommitClosed(round, current);
        if (commitment == bytes32(0)) revert RoundBeaconInvalidCommitment(round);
        Part storage p = _parts[round][msg.sender];
        if (p.commitment != bytes32(0)) revert RoundBeaconAlreadyCommitted(round, msg.sender);
        p.commitment = commitment;
        _beacons[round].commits += 1;
        emit SecretCommitted(round, msg.sender, commitment);
    }

    /// @notice Reveals the caller's secret for the opened `round`, within its reveal window;
    /// once. Members of the round (Active when it opened and now) only.
    /// @param round The round.
    /// @param secret The secret behind the caller's commitment.
    function reveal(uint256 round, bytes32 secret) external {
        RoundLedger.Round memory r = _ledger.roundInfo(round);
        if (r.status == RoundLedger.RoundStatus.None) revert RoundBeaconRoundNotOpened(round);
        (uint64 activeSince, uint64 activeUntil) = _registry.tenure(msg.sender);
        if (activeSince == 0 || activeUntil != 0 || activeSince > r.membershipEpoch) {
            revert RoundBeaconNotRoundMember(round, msg.sender);
        }
        uint64 deadline = r.openedAt + _revealWindow;
        if (block.timestamp > deadline) revert RoundBeaconRevealClosed(round, deadline);
        Part storage p = _parts[round][msg.sender];
        if (p.commitment == bytes32(0)) revert RoundBeaconNotCommitted(round, msg.sender);
        if (p.revealed) revert RoundBeaconAlreadyRevealed(round, msg.sender);
        if (keccak256(abi.encode(secret, msg.sender, round, address(this))) != p.commitment) {
            revert RoundBeaconWrongSecret(round, msg.sender);
        }
        p.revealed = true;
        Beacon storage b = _beacons[round];
        b.reveals += 1;
        b.mix ^= keccak256(abi.encode(secret, msg.sender));
        emit SecretRevealed(round, msg.sender, secret);
    }

    /// @notice Records that `account` committed for `round` and did not reveal by the
    /// deadline. Anyone may call it, once per (round, account), after the reveal window.
    /// @param round An opened round whose reveal window closed.
    /// @param account The member that withheld.
    function recordWithheld(uint256 round, address account) external {
        RoundLedger.Round memory r = _ledger.roundInfo(round);
        if (r.status == RoundLedger.RoundStatus.None) revert RoundBeaconRoundNotOpened(round);
        uint64 deadline = r.openedAt + _revealWindow;
        if (block.timestamp <= deadline) revert RoundBeaconRevealStillOpen(round, deadline);
        Part storage p = _parts[round][account];
        if (p.commitment == bytes32(0) || p.revealed || p.withheld) revert RoundBeaconNothingWithheld(round, account);
        p.withheld = true;
        _withheldCount[account] += 1;
        emit RevealWithheld(round, account, msg.sender);
    }

    // ------------------------------------------------------------------ views

    /// @notice The beacon of `round`: its status, value (once `Ready`), counts and deadline.
    /// @param round The round.
    /// @return info The beacon.
    function beacon(uint256 round) external view returns (BeaconInfo memory info) {
        return _info(round);
    }

    /// @inheritdoc IRoundBeacon
    function valueOf(uint256 round) external view returns (bytes32) {
        return _info(round).value;
    }

    function _info(uint256 round) private view returns (BeaconInfo memory info) {
        Beacon storage b = _beacons[round];
        info.commits = b.commits;
        info.reveals = b.reveals;
        RoundLedger.Round memory r = _ledger.roundInfo(round);
        if (r.status == RoundLedger.RoundStatus.None) return info; // Committing
        info.revealDeadline = r.openedAt + _revealWindow;
        (uint256 num, uint256 den) = _ledger.quorum();
        // the least k with k * den > memberCount * num: the ledger's quorum over the round's members
        info.needed = uint32((uint256(r.memberCount) * num) / den + 1);
        bool closed = b.reveals == b.commits || block.timestamp > info.revealDeadline;
        if (!closed) {
            info.status = BeaconStatus.Revealing;
        } else if (b.reveals >= info.needed) {
            info.status = BeaconStatus.Ready;
            info.value = keccak256(abi.encode(b.mix, round, block.chainid, address(this)));
        } else {
            info.status = BeaconStatus.Failed;
        }
    }

    /// @notice The commitment of `account` for `round` (zero if none), and whether it revealed.
    /// @param round The round.
    /// @param account The member.
    /// @return commitment Its commitment.
    /// @return revealed Whether it revealed.
    function commitmentOf(uint256 round, address account) external view returns (bytes32 commitment, bool revealed) {
        Part storage p = _parts[round][account];
        return (p.commitment, p.revealed);
    }

    /// @notice How many of `account`'s withholdings are on the record.
    /// @param account The member.
    /// @return The count.
    function withheldCount(address account) external view returns (uint256) {
        return _withheldCount[account];
    }

    /// @notice Seconds after a round opens during which secrets are revealed.
    /// @return The reveal window.
    function revealWindow() external view returns (uint64) {
        return _revealWindow;
    }

    /// @inheritdoc IRoundBeacon
    function ledger() external view returns (address) {
        return address(_ledger);
    }

    /// @notice The registry this beacon reads.
    /// @return The registry address.
    function registry() external view returns (address) {
        return address(_registry);
    }
}
