"""Calendar data files, one per region (`<region>.json`), loaded by `shared.calendar`."""
