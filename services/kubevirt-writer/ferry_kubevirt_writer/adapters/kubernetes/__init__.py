"""The Kubernetes target of the kubevirt-writer: ``writer`` (the TargetWriter), ``objects``
(dict-bodied calls in threads), ``pod_watch`` (following the sink pod), ``failures``
(readable permanent/temporary errors) and ``resources`` (what it manages)."""
