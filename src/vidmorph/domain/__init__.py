"""Pure domain: ids, task states and records. Standard library only."""
