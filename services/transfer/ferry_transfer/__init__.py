"""Transfer workers: copy disk ranges from the source datastore to the target sink."""
