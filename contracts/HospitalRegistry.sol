// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumAdmin} from "./ConsortiumAdmin.sol";
import {IHospitalRegistry} from "./IHospitalRegistry.sol";

/**
 * @title HospitalRegistry
 * @notice One on-chain identity per institution of the medmesh consortium: its account, its
 * libp2p peer ID and its two public keys (X25519 for sealing updates, Ed25519 for signing
 * gossip). A hospital registers itself (Pending); the consortium admin admits it (Active)
 * or revokes it (Revoked).
 * @dev Institution IDs and peer IDs stay reserved after a revocation, and an account holds
 * at most one identity for ever, so a revoked identity cannot come back under another name.
 * `Suspended` is reserved for the slashing flow of a later version; v1 never sets it.
 */
contract HospitalRegistry is ConsortiumAdmin, IHospitalRegistry {
    /// @notice Life cycle of an identity.
    enum Status {
        None,
        Pending,
        Active,
        Suspended,
        Revoked
    }

    /// @notice A registered institution.
    /// @param institutionId keccak256 of the institution's name; registrable once.
    /// @param account The account that registered and acts for the institution.
    /// @param peerId The libp2p peer ID (base58, e.g. "12D3KooW...").
    /// @param sealKey X25519 public key that peers seal updates to.
    /// @param signKey Ed25519 public key that signs the peer's gossip.
    /// @param status Current status.
    /// @param joinedAt Timestamp of admission (0 while Pending).
    struct Identity {
        bytes32 institutionId;
        address account;
        Status status;
        uint64 joinedAt;
        bytes32 sealKey;
        bytes32 signKey;
        string peerId;
    }

    /// @notice Longest accepted peer ID in bytes (libp2p IDs are ~52 characters).
    uint256 public constant MAX_PEER_ID_LENGTH = 128;

    mapping(address account => Identity) private _identities;
    mapping(bytes32 institutionId => address) private _accountOfInstitution;
    mapping(bytes32 peerIdHash => address) private _accountOfPeer;
    address[] private _members;
    uint256 private _activeCount;

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

    /// @notice `account` registered an identity, now Pending.
    /// @param account The registering account.
    /// @param institutionId The institution ID.
    /// @param peerId The libp2p peer ID.
    /// @param sealKey The X25519 public key.
    /// @param signKey The Ed25519 public key.
    event Registered(
        address indexed account,
        bytes32 indexed institutionId,
        string peerId,
        bytes32 sealKey,
        bytes32 signKey
    );

    /// @notice The admin admitted `account`, now Active.
    /// @param account The admitted account.
    /// @param admin The admin that admitted it.
    event Admitted(address indexed account, address indexed admin);

    /// @notice The admin revoked `account`.
    /// @param account The revoked account.
    /// @param admin The admin that revoked it.
    /// @param previousStatus The status it had before.
    event Revoked(address indexed account, address indexed admin, Status previousStatus);

    /// @param initialAdmin The consortium admin.
    constructor(address initialAdmin) ConsortiumAdmin(initialAdmin) {}

    /// @notice Registers the caller's institution; the identity starts Pending.
    /// @param institutionId keccak256 of the institution's name; nonzero and unused.
    /// @param peerId The libp2p peer ID; nonempty, at most 128 bytes, unused.
    /// @param sealKey X25519 public key; nonzero.
    /// @param signKey Ed25519 public key; nonzero.
    function register(bytes32 institutionId, string calldata peerId, bytes32 sealKey, bytes32 signKey) external {
        if (_identities[msg.sender].status != Status.None) revert HospitalRegistryAlreadyRegistered(msg.sender);
        if (institutionId == bytes32(0)) revert HospitalRegistryInvalidInstitution(institutionId);
        if (bytes(peerId).length == 0 || bytes(peerId).length > MAX_PEER_ID_LENGTH) {
            revert HospitalRegistryInvalidPeerId(peerId);
        }
        if (sealKey == bytes32(0) || signKey == bytes32(0)) revert HospitalRegistryInvalidKeys(sealKey, signKey);
        address holder = _accountOfInstitution[institutionId];
        if (holder != address(0)) revert HospitalRegistryInstitutionTaken(institutionId, holder);
        bytes32 peerHash = keccak256(bytes(peerId));
        holder = _accountOfPeer[peerHash];
        if (holder != address(0)) revert HospitalRegistryPeerTaken(peerId, holder);

        _identities[msg.sender] = Identity({
            institutionId: institutionId,
            account: msg.sender,
            status: Status.Pending,
            joinedAt: 0,
            sealKey: sealKey,
            signKey: signKey,
            peerId: peerId
        });
        _accountOfInstitution[institutionId] = msg.sender;
        _accountOfPeer[peerHash] = msg.sender;
        _members.push(msg.sender);
        emit Registered(msg.sender, institutionId, peerId, sealKey, signKey);
    }

    /// @notice Admits a Pending identity, making it Active. Admin only.
    /// @param account The identity's account.
    function admit(address account) external onlyAdmin {
        Identity storage id = _identities[account];
        if (id.status == Status.None) revert HospitalRegistryUnknownAccount(account);
        if (id.status != Status.Pending) revert HospitalRegistryInvalidStatus(account, id.status);
        id.status = Status.Active;
        id.joinedAt = uint64(block.timestamp);
        ++_activeCount;
        emit Admitted(account, msg.sender);
    }

    /// @notice Revokes an identity for good; its institution ID and peer ID stay reserved.
    /// Admin only.
    /// @param account The identity's account.
    function revoke(address account) external onlyAdmin {
        Identity storage id = _identities[account];
        Status previous = id.status;
        if (previous == Status.None) revert HospitalRegistryUnknownAccount(account);
        if (previous == Status.Revoked) revert HospitalRegistryInvalidStatus(account, previous);
        id.status = Status.Revoked;
        if (previous == Status.Active) --_activeCount;
        emit Revoked(account, msg.sender, previous);
    }

    /// @inheritdoc IHospitalRegistry
    function isActive(address account) external view returns (bool) {
        return _identities[account].status == Status.Active;
    }

    /// @inheritdoc IHospitalRegistry
    function activeCount() external view returns (uint256) {
        return _activeCount;
    }

    /// @notice The identity held by `account` (all zero with status None if there is none).
    /// @param account The account to look up.
    /// @return The identity.
    function identity(address account) external view returns (Identity memory) {
        return _identities[account];
    }

    /// @notice The account that registered `peerId` (zero if none).
    /// @param peerId The libp2p peer ID.
    /// @return The account.
    function accountOfPeer(string calldata peerId) external view returns (address) {
        return _accountOfPeer[keccak256(bytes(peerId))];
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
}
