"""chat-ingest: write and read Dify-style chat records safely and fast."""

__version__ = "0.1.0"
