"""Ferry's shared package: message contracts, bus helpers, tracing, logs and settings.

Every service depends on this package and on nothing else of Ferry's.
"""
