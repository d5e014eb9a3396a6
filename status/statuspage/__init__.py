"""The stack's live status page (/status/ at the gateway): each service's replicas, their uWSGI workers, and the
requests each served over the last seconds, from what the servers already keep (docs/scaling.md "Watch it scale").

collector.py gathers the figures, app.py serves them as a page and as JSON.
"""
