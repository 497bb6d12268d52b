`Speedometer` reports how fast a counter grows, in units per second.
