"""A CDS Hooks 2.0 service for back muscle spasm at order entry."""

__version__ = "0.1.0"
