"""``ferry demo``'s local stack and the simulated vCenter it migrates from; the processes
are started with the test peers' launchers (:mod:`ferry_peers`)."""
