"""From faces to people: per-feed processing (`feed`), face quality, tracks (sightings),
nearest neighbours, clustering into identities, grouping a case's sightings and scoring it.

Pure numpy apart from `feed` (which calls the models) and `grouping` (which reads and writes the
case store). Imports `case`, `models`, `video` and the base modules.
"""
