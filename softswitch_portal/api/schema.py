"""Adjustments to the generated OpenAPI schema."""

# A time of day as the models hold it (the switch's local time, no offset): 08:30 or 08:30:15.
LOCAL_TIME = {"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$", "example": "08:30:00"}


def local_times(result, generator, request, public):
    """Times of day as patterns: OpenAPI's ``format: time`` is RFC 3339's, which demands an offset they lack."""

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and node.get("format") == "time":
                node.pop("format")
                node.update({key: value for key, value in LOCAL_TIME.items() if key not in node})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result
