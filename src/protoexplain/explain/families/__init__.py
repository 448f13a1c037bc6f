"""Families of modifications. Every module here registers its modifications on import.

``paper`` holds the six characteristics of Nauta et al.; further families (e.g. a perceptual
one) are added by dropping a module into this package.
"""
