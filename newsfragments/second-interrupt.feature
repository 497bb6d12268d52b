A second Ctrl-C (SIGINT or SIGTERM) while mnemic waits to write its queued rows makes it exit at once, logging how many rows were not written.
