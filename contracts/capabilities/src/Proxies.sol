// SPDX-License-Identifier: Apache-2.0
// expect Eip1967Proxy: is_proxy
// expect SlotProxy: is_proxy
// expect KillableVault: selfdestruct, owner_can_withdraw
// expect PlainVault: none
// expect WithdrawVault: owner_can_withdraw
pragma solidity >=0.4.24 <0.9.0;

// EIP-1967: implementation address at keccak256("eip1967.proxy.implementation") - 1.
contract Eip1967Proxy {
    address public admin;

    CONSTRUCTOR {
        admin = msg.sender;
    }

    function upgradeTo(address impl) public {
        require(msg.sender == admin, "not admin");
        assembly {
            sstore(0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc, impl)
        }
    }

    FALLBACK {
        assembly {
            let impl := sload(0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}

// A pre-EIP-1967 proxy: the implementation sits in an ordinary storage variable.
contract SlotProxy {
    address public implementation;
    address public admin;

    CONSTRUCTOR {
        admin = msg.sender;
    }

    function setImplementation(address impl) public {
        require(msg.sender == admin, "not admin");
        implementation = impl;
    }

    FALLBACK {
        address impl = implementation;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}

// selfdestruct(msg.sender) sends the vault's ether to the owner: since cap-3 that is also
// owner_can_withdraw.
contract KillableVault {
    address public owner;
    uint256 public deposits;

    CONSTRUCTOR {
        owner = msg.sender;
    }

    function deposit() public payable {
        deposits = deposits + msg.value;
    }

    function kill() public {
        require(msg.sender == owner, "not owner");
        selfdestruct(PAYABLE_SENDER);
    }
}

contract PlainVault {
    address public owner;
    uint256 public deposits;

    CONSTRUCTOR {
        owner = msg.sender;
    }

    function deposit() public payable {
        deposits = deposits + msg.value;
    }
}

contract WithdrawVault {
    address public owner;
    uint256 public deposits;

    CONSTRUCTOR {
        owner = msg.sender;
    }

    function deposit() public payable {
        deposits = deposits + msg.value;
    }

    function withdraw(uint256 amount) public {
        require(msg.sender == owner, "not owner");
        PAYABLE_SENDER.transfer(amount);
    }
}
