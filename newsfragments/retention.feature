`--retention-days N` deletes runs whose last sample is older than N days, at start and then once a day.
