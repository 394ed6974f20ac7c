"""The backends of :class:`ferry_shared.credentials.CredentialStore` and the choice between them."""
