"""The JSON API outside systems send their orders to, authenticated by API key (``Bearer``)."""
