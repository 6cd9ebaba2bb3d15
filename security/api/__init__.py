"""Security's REST endpoints: black/white lists, the dynamic blacklist and its review, the API request log."""
