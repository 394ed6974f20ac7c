"""The planner's use cases: providers, maps and plans (:mod:`planning`), migrations (:mod:`migrations`)."""
