"""``fuzzorch server``: the HTTP API, the dispatcher loop and the ingest consumers."""
