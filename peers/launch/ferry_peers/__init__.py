"""Starting the real test peers (nats-server, ferry-vcsim) and Ferry's services as local
processes, each logging to its own file. Used by the pytest plugin, the benchmarks and
the CLI's ``ferry demo`` (which runs on the simulator); imports no pytest."""
