// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RejectEther (test only)
/// @notice A contract account that forwards calls and refuses every ether transfer to it: it has
/// no `receive` and no `fallback`, so a plain value transfer (e.g. a bond refund) fails.
contract RejectEther {
    /// @notice Calls `target` with `data` and the wei sent; bubbles up the target's revert data.
    /// @param target The contract to call.
    /// @param data The calldata.
    /// @return The target's return data.
    function forward(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }
}
