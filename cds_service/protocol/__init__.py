"""CDS Hooks on the wire: the request body, the hook request and feedback models, the services offered."""
