"""Streaming ingestion: clients of a Shoal server that feed collections from a stream."""
