"""The `pyscale` command: the one-machine topology and the offline plan."""
