"""Scheduling: the Dispatcher protocol and queue-time estimates."""
