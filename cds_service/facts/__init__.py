"""The plain facts rules read (orders, conditions, courses, procedures, age), built from FHIR JSON."""
