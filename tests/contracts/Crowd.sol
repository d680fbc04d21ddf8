// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CrowdMember (test only)
/// @notice One member account of a `Crowd`: forwards the crowd's calls, so that the registry
/// and the round ledger see this contract as `msg.sender`.
contract CrowdMember {
    address private immutable _crowd;

    constructor() {
        _crowd = msg.sender;
    }

    /// @notice Calls `target` with `data` (the crowd only); bubbles up the target's revert data.
    /// @param target The contract to call.
    /// @param data The calldata.
    function forward(address target, bytes calldata data) external {
        require(msg.sender == _crowd, "CrowdMember: not the crowd");
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}

/// @title Crowd (test only)
/// @notice Many consortium members in few transactions: `join` creates members that register
/// (bond 0), `admitAll` admits them (the crowd must be the registry's admin, during genesis)
/// and `commitAll` has them commit an update to a round. Used to fill a round to its limit.
contract Crowd {
    /// @notice The members, in creation order.
    CrowdMember[] public members;

    /// @notice Creates `count` members; each registers with `registry` without a bond.
    /// @param registry The HospitalRegistry.
    /// @param count How many.
    function join(address registry, uint256 count) external {
        for (uint256 n = 0; n < count; ++n) {
            uint256 i = members.length;
            CrowdMember m = new CrowdMember();
            members.push(m);
            m.forward(
                registry,
                abi.encodeWithSignature(
                    "register(bytes32,string,bytes32,bytes32,uint64)",
                    keccak256(abi.encode("crowd institution", i)),
                    string(abi.encodePacked("crowd-peer-", bytes32(i))),
                    keccak256(abi.encode("crowd seal", i)),
                    keccak256(abi.encode("crowd sign", i)),
                    uint64(1000)
                )
            );
        }
    }

    /// @notice Admits members `from` to `to` (exclusive); the crowd acts as the registry's admin.
    /// @param registry The HospitalRegistry.
    /// @param from The first member.
    /// @param to One past the last member.
    function admitAll(address registry, uint256 from, uint256 to) external {
        for (uint256 i = from; i < to; ++i) {
            (bool ok, bytes memory ret) =
                registry.call(abi.encodeWithSignature("admit(address)", address(members[i])));
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
    }

    /// @notice Members `from` .. `to - 1` declare a DP privacy budget (epsilon 10, delta 1e-5,
    /// RDP, noise 1, clip 1) on `roundLedger`, as each must before its first commitment.
    function declareAll(address roundLedger, uint256 from, uint256 to) external {
        for (uint256 i = from; i < to; ++i) {
            members[i].forward(
                roundLedger,
                abi.encodeWithSignature(
                    "declarePrivacyBudget((uint64,uint64,uint64,uint64,bytes24))",
                    uint64(10_000_000),
                    uint64(10_000_000_000_000),
                    uint64(1_000_000),
                    uint64(1_000_000),
                    bytes24("rdp")
                )
            );
        }
    }

    /// @notice Members `from` to `to` (exclusive) each commit an update (1 sample) to `round`.
    /// @param roundLedger The RoundLedger.
    /// @param round The open round.
    /// @param from The first member.
    /// @param to One past the last member.
    function commitAll(address roundLedger, uint256 round, uint256 from, uint256 to) external {
        for (uint256 i = from; i < to; ++i) {
            members[i].forward(
                roundLedger,
                abi.encodeWithSignature(
                    "commitUpdate(uint256,bytes32,uint64,uint64,uint8)",
                    round,
                    keccak256(abi.encode("crowd update", round, i)),
                    uint64(1),
                    uint64(1_000_000),
                    uint8(0)
                )
            );
        }
    }

    /// @notice How many members there are.
    /// @return The count.
    function memberCount() external view returns (uint256) {
        return members.length;
    }
}
