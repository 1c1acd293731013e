"""The ingestion API (/api/v1): pipelines and monitoring jobs report experiments over HTTP."""
