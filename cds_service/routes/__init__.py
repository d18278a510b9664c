"""The HTTP routes: thin adapters from requests to the pipeline, the store and the reports."""
