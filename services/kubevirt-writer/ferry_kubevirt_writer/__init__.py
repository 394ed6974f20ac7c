"""kubevirt-writer service: creates volumes, disk sinks and VirtualMachines on the target."""
