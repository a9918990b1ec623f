"""mlplat: the repository's own command line (plan, validate, promote, serve, demo)."""
