"""Small text utilities every layer shares: linear-time patterns (RE2), redaction of secrets,
the configured secret values, markup of event-supplied text, and the clouds' error codes."""
