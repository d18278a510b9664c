"""Durable records: the schema and its migrations, issued cards and feedback, the token replay cache."""
