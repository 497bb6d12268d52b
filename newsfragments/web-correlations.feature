A run's Correlations tab draws a heat map of the correlations between its columns, computed by PostgreSQL, with the strongest pairs listed.
