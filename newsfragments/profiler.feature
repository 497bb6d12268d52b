The `@profiler` decorator adds columns with the calls, durations and errors of a function to every tracer made afterwards.
