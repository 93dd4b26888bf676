"""The contract between server and sites: the run config that composes the libraries' settings, the data layout,
node config, and the messages that cross the wire."""
