"""Upstream engines: services that take a whole task (the input file) and give back a video."""
