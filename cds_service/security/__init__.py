"""Who may call the service (client JWTs) and which servers it may call (FHIR allow-list, bounded GETs)."""
