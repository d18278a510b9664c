"""FHIR as data: codings, tolerant JSON accessors, the R4B models, and older versions read as R4."""
