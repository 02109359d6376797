"""Production operations as small modules of their own: metrics, request logs, API keys,
limits, early answers to uploads, draining on shutdown."""
