Runs of one tracer can be checked in the tree and compared: each column's chart overlays them by the time since each run's start, at a shareable `/compare?runs=` address.
