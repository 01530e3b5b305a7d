"""The distribution engine's pure core: no Django, no database, so every rule can be tested in microseconds.

``selection`` decides who gets a lead from plain facts; ``schedule`` answers whether a delivery window is open.
The transactional apply that gathers the facts under locks and writes the result is
``campaigns.services.distribution``.
"""
