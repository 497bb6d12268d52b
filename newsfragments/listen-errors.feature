A taken UDP or HTTP port, or an embedded server that cannot start, is reported in one log line naming the address and the option to change.
