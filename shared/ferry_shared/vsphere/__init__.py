"""Connecting to vSphere, shared by every service that talks to a vCenter or ESXi host:
endpoint parsing, TLS trust (CA bundle, pinned thumbprint, or explicit insecure),
pyvmomi login, and the failures a person can act on."""
