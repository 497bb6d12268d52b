Runs of millions of samples open in well under a second, because mnemic reduces them from per-run summaries that it builds on first use and keeps current.
