"""Everything that brings data into Gasoline: OTLP, the native event API, log sources."""
