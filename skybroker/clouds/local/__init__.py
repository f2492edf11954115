"""The embedded `local` cloud: nodes are sandbox directories and process groups on this machine."""
