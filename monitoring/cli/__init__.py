"""`python -m monitoring`: the command line."""
