"""Route modules, one per resource of the contract."""
