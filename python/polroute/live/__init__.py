"""The live kernel: the netlink socket, reading live state, snapshots, and provisioning."""
