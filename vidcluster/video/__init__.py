"""Footage in: finding the files and their cameras and clocks (`sources`), reading container
structure without decoding (`containers`), and decoding sampled frames (`sampler`).

Imports only the base modules (`errors`, `types`, `config`); knows nothing of faces.
"""
