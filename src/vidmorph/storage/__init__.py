"""Blob storage for uploads and outputs: a protocol, and files on local disk."""
