"""The settings of rag_platform.settings, split by area.

Only rag_platform.settings imports these modules, in order, after it has applied the offline
environment and installed the egress guard; later modules read (and a few extend) settings
of earlier ones.
"""
