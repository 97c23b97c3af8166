"""The cloud-SDK layer below the actions: the clients, the mapping of the SDKs' errors to ours,
the clouds' naming rules and allowed hosts, and the read-only look-ups (enrichment, the
pollers' pages, run queries, the LLM client, the Databricks destinations of ``setup``)."""
