The web page lists tracers and their runs and draws one chart per column, with a shared cursor, drag-to-zoom, live updates and a shareable address for each run.
