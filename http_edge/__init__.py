"""The HTTP edge shared by every aiohttp port, whether it brings data in (OTLP/HTTP, the
native intake) or takes it out (the HTTP API): Host, token, Origin and CORS checks.

It sits beside ``receivers`` and ``exporters`` rather than in either, so neither imports
the other, and outside ``collector``, which holds no protocol code: it depends on
``collector`` (``collector.edge.EdgePolicy`` decides, this module applies it to aiohttp)
and on nothing else of the project.
"""
