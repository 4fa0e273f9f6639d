"""The HTTP edge: FastAPI app, auth, wire schemas and routes under /v1/runwayml."""
