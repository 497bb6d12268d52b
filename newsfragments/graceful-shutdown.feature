On SIGTERM or SIGINT, also as a daemon stopped with `kill $(cat PIDFILE)`, mnemic writes every queued row before it exits.
