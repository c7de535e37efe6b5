"""The conformance suites and server fixtures, shipped for third-party transports too."""
