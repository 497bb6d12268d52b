An open run's charts and header follow new samples within about a second and a half, fetching only the samples they do not have yet.
