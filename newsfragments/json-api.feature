The JSON API under `/api/` serves tracers, runs, a run's samples reduced to at most N points per series, the correlations between a run's columns, and the whole run as CSV.
