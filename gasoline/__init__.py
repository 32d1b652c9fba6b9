"""The Gasoline distribution: the console commands and the one table of components.

Holds no logic of its own; ``collector`` declares what a component is, ``receivers`` and
``exporters`` implement them, and ``gasoline.components`` says which ones this build has.
"""
