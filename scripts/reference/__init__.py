"""Reference fixtures from the methods' authors' code, one module per method (see
scripts/reference_fixtures.py)."""
