"""Everything that takes data out of Gasoline: the HTTP query API and, later, MCP and forwarders."""
