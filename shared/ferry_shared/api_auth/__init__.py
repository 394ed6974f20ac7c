"""Authentication and authorization of the planner's and the inventory's HTTP APIs.

Every route declares what it needs (:mod:`.access`); :class:`.guard.ApiGuard` checks a
request's bearer token with an :class:`.ports.Authenticator` (a local token,
:mod:`.local_token`, or Kubernetes TokenReview and SubjectAccessReview, :mod:`.kubernetes`)
and writes one audit line per mutating call (:mod:`.audit`).
"""
